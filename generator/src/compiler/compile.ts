// Compiles a module of .proto files with buf. The files go to buf as a zip on stdin, so the
// text may come from unsaved editor buffers (the overlay) rather than the disk, and the
// result is a FileDescriptorSet with source info (comments, spans) and every import,
// including the well-known types, which buf carries built in.
import { createHash } from "node:crypto";
import { readdir, readFile, realpath, stat } from "node:fs/promises";
import path from "node:path";
import { fromBinary, type FileRegistry, createFileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema, type FileDescriptorSet } from "@bufbuild/protobuf/wkt";
import { strToU8, zipSync } from "fflate";
import { generalDiagnostic, type Diagnostic } from "../diagnostics.js";
import { grpcrouterProtos } from "../grpcrouter-protos.js";
import { isGenerated } from "../marker.js";
import { runBuf } from "./buf.js";
import { moduleLayout } from "./layout.js";

/** Unsaved editor buffers: path (absolute, or relative to the root) → text. */
export type Overlay = ReadonlyMap<string, string> | Readonly<Record<string, string>>;

export interface CompileModuleOptions {
  /** The module folder: where buf.yaml is, or the folder whose .proto files form the module. */
  root: string;
  overlay?: Overlay;
  signal?: AbortSignal;
  /** Folders (absolute or relative to root) that hold outputs, never inputs (e.g. gen/). */
  exclude?: readonly string[];
}

export interface CompiledModule {
  root: string;
  /** Import paths ("demo/v1/echo.proto") of the module's own files, sorted. */
  files: string[];
  /** Import path → path relative to the root (they differ in buf.yaml v2 modules with a path). */
  sourcePaths: ReadonlyMap<string, string>;
  /** The text that was compiled, by import path (module files and grpcrouter's protos). */
  sources: ReadonlyMap<string, string>;
  /** Every compiled file and import in dependency order; undefined when compilation failed. */
  fileDescriptorSet: FileDescriptorSet | undefined;
  registry: FileRegistry | undefined;
  /** A hash of each compiled file's descriptor bytes, by import path (for caches downstream). */
  fileHashes: ReadonlyMap<string, string>;
  diagnostics: Diagnostic[];
  /** Equal keys mean equal inputs, so equal results. */
  key: string;
}

// One entry per root: the language server compiles the same module over and over and most
// runs either repeat the last inputs (a save after a compile) or differ from them.
const lastCompile = new Map<string, CompiledModule>();

export async function compileModule(options: CompileModuleOptions): Promise<CompiledModule> {
  const root = path.resolve(options.root);
  const overlay = normalizeOverlay(root, options.overlay);
  const exclude = (options.exclude ?? []).map((p) => toRel(root, p)).filter((p) => p !== "" && !p.startsWith(".."));

  const bufYaml = overlay.get("buf.yaml") ?? (await readText(path.join(root, "buf.yaml")));
  const layout = await moduleLayout(root, bufYaml, options.signal);
  const diagnostics: Diagnostic[] = [...layout.diagnostics];

  // Collect sources: import path → { rel, text }.
  const sources = new Map<string, string>();
  const sourcePaths = new Map<string, string>();
  for (const mod of layout.modules) {
    const skip = [...exclude, ...mod.excludes];
    const rels = await listProtos(root, mod.dir, skip);
    for (const [rel] of overlay) {
      if (rel.endsWith(".proto") && inside(rel, mod.dir) && !skip.some((s) => inside(rel, s)) && !rels.includes(rel)) rels.push(rel);
    }
    // Read at once, not one after another: each read is a trip through libuv's thread pool,
    // and fifty of them in a row were most of an editor's compile on a busy machine.
    const sorted = rels.sort();
    const texts = await mapLimited(sorted, async (rel) => overlay.get(rel) ?? readText(path.join(root, rel)));
    for (const [i, rel] of sorted.entries()) {
      const text = texts[i];
      if (text === undefined || isGenerated(text)) continue;
      const importPath = mod.dir === "." ? rel : rel.slice(mod.dir.length + 1);
      const other = sourcePaths.get(importPath);
      if (other !== undefined) {
        diagnostics.push({ ...generalDiagnostic(`${importPath} is defined twice, in ${other} and ${rel}`, "grpcrouter"), file: rel });
        continue;
      }
      sources.set(importPath, text);
      sourcePaths.set(importPath, rel);
    }
  }
  const files = [...sources.keys()].sort();
  // grpcrouter's own protos resolve without set-up, unless the module carries its own copy.
  for (const [name, text] of Object.entries(grpcrouterProtos)) if (!sources.has(name)) sources.set(name, text);

  const hash = createHash("sha256");
  for (const [name, text] of [...sources].sort(([a], [b]) => (a < b ? -1 : 1))) hash.update(name).update("\0").update(text).update("\0");
  for (const d of diagnostics) hash.update(JSON.stringify(d));
  const key = hash.digest("hex");

  const last = lastCompile.get(root);
  if (last && last.key === key) return last;

  let fileDescriptorSet: FileDescriptorSet | undefined;
  let registry: FileRegistry | undefined;
  let fileHashes = new Map<string, string>();
  if (files.length === 0 && diagnostics.length === 0) {
    diagnostics.push(generalDiagnostic(`no .proto files found in ${root}`, "grpcrouter"));
  }
  if (files.length > 0) {
    const zip = zipSync(Object.fromEntries([...sources].map(([n, t]) => [n, strToU8(t)])), { level: 0 });
    const r = await runBuf(["build", "-#format=zip", "--error-format=json", "--output", "-#format=binpb"], { input: zip, signal: options.signal, cwd: root });
    if (r.status === 0) {
      fileDescriptorSet = fromBinary(FileDescriptorSetSchema, r.stdout);
      registry = createFileRegistry(fileDescriptorSet);
      fileHashes = hashFiles(r.stdout, fileDescriptorSet);
    }
    diagnostics.push(...parseBufErrors(r.stderr, r.status, sourcePaths));
  }
  const result: CompiledModule = { root, files, sourcePaths, sources, fileDescriptorSet, registry, fileHashes, diagnostics, key };
  lastCompile.set(root, result);
  return result;
}

/**
 * Hashes each file's bytes in the serialized FileDescriptorSet, which is a plain sequence of
 * `file` fields (tag 0x0a, varint length, bytes) in the order fromBinary yields them.
 */
function hashFiles(bytes: Uint8Array, set: FileDescriptorSet): Map<string, string> {
  const out = new Map<string, string>();
  let pos = 0;
  let index = 0;
  while (pos < bytes.length) {
    const tag = bytes[pos++];
    let len = 0;
    for (let shift = 0; ; shift += 7) {
      const b = bytes[pos++]!;
      len += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) break;
    }
    if (tag === 0x0a) {
      const name = set.file[index++]?.name ?? "";
      out.set(
        name,
        createHash("sha1")
          .update(bytes.subarray(pos, pos + len))
          .digest("hex"),
      );
    }
    pos += len;
  }
  return out;
}

interface BufJsonError {
  path?: string;
  start_line?: number;
  start_column?: number;
  end_line?: number;
  end_column?: number;
  type?: string;
  message?: string;
}

/** buf prints one JSON object a line with --error-format=json; anything else is a plain failure. */
export function parseBufErrors(stderr: string, status: number, sourcePaths: ReadonlyMap<string, string>): Diagnostic[] {
  const out: Diagnostic[] = [];
  const plain: string[] = [];
  for (const line of stderr.split("\n")) {
    const t = line.trim();
    if (!t) continue;
    let e: BufJsonError | undefined;
    if (t.startsWith("{")) {
      try {
        e = JSON.parse(t) as BufJsonError;
      } catch {
        e = undefined;
      }
    }
    if (!e || typeof e.message !== "string") {
      plain.push(t);
      continue;
    }
    const line1 = Math.max(1, e.start_line ?? 1);
    const col1 = Math.max(1, e.start_column ?? 1);
    out.push({
      file: e.path ? (sourcePaths.get(e.path) ?? e.path) : "",
      line: line1,
      column: col1,
      endLine: Math.max(line1, e.end_line ?? line1),
      endColumn: Math.max(1, e.end_column ?? col1),
      severity: e.type === "WARNING" ? "warning" : "error",
      message: e.message,
      source: "buf",
    });
  }
  if (status !== 0 && out.length === 0) {
    out.push(generalDiagnostic(plain.join(" ").replace(/^Failure:\s*/, "") || `buf build exited with ${status}`, "buf"));
  }
  return out;
}

function normalizeOverlay(root: string, overlay: Overlay | undefined): Map<string, string> {
  const m = new Map<string, string>();
  if (!overlay) return m;
  const entries = overlay instanceof Map ? [...overlay] : Object.entries(overlay as Record<string, string>);
  for (const [p, text] of entries) {
    const rel = toRel(root, p);
    if (!rel.startsWith("..")) m.set(rel, text);
  }
  return m;
}

function toRel(root: string, p: string): string {
  return (path.isAbsolute(p) ? path.relative(root, p) : path.normalize(p)).split(path.sep).join("/").replace(/\/+$/, "");
}

function inside(rel: string, dir: string): boolean {
  return dir === "." || rel === dir || rel.startsWith(dir + "/");
}

/** Files open at once at most: far below any descriptor limit (macOS defaults to 256). */
const OPEN_AT_ONCE = 32;

/** `items.map(f)` awaited, with at most OPEN_AT_ONCE calls running; results in order. */
async function mapLimited<T, R>(items: readonly T[], f: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await f(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(OPEN_AT_ONCE, items.length) }, worker));
  return out;
}

async function readText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch {
    return undefined;
  }
}

/**
 * .proto files below root/dir as root-relative paths; skips dot folders, node_modules, `skip`.
 * Symlinked folders are followed (once each): a Kubernetes ConfigMap volume with nested
 * paths is made of `demo -> ..data/demo` links, and the module must look the same there.
 * The walk goes level by level, each level's folders at once (a folder reached twice through
 * links counts at its shallowest path, the first in name order among equals).
 */
async function listProtos(root: string, dir: string, skip: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  const seen = new Set<string>();
  let level = [dir];
  while (level.length > 0) {
    const reals = await mapLimited(level, (rel) => realpath(path.join(root, rel)).catch(() => undefined));
    const walk: string[] = [];
    for (const [i, rel] of level.entries()) {
      const real = reals[i];
      if (real === undefined || seen.has(real)) continue;
      seen.add(real);
      walk.push(rel);
    }
    const listed = await mapLimited(walk, (rel) => readdir(path.join(root, rel), { withFileTypes: true }).catch(() => []));
    const next: string[] = [];
    await Promise.all(
      walk.map(async (rel, i) => {
        for (const e of listed[i]!) {
          const child = rel === "." ? e.name : `${rel}/${e.name}`;
          const isDir =
            e.isDirectory() ||
            (e.isSymbolicLink() &&
              (await stat(path.join(root, child)).then(
                (st) => st.isDirectory(),
                () => false,
              )));
          if (isDir) {
            if (!e.name.startsWith(".") && e.name !== "node_modules" && !skip.some((s) => inside(child, s))) next.push(child);
          } else if (e.name.endsWith(".proto") && !skip.some((s) => inside(child, s))) {
            found.push(child);
          }
        }
      }),
    );
    level = next.sort();
  }
  return found;
}
