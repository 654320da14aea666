// `buf lint` with the module's buf.yaml rules, and `buf breaking` against a git ref, on the
// text the editor has (unsaved buffers included): the module goes to buf as a zip on stdin,
// with its buf.yaml and grpcrouter's own protos (which are not on disk). Findings become
// diagnostics whose code is buf's rule id (FIELD_LOWER_SNAKE_CASE, FIELD_NO_DELETE, ...).
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { strToU8, unzipSync, zipSync } from "fflate";
import { DiagnosticSeverity, type Diagnostic } from "vscode-languageserver";
import { BUF_CONFIG_FILES, configFileNamed } from "../buf-config.js";
import { isGenerated, type Compiled } from "../generator-adapter.js";
import { bufError, runBuf } from "./run-buf.js";

const execFileP = promisify(execFile);

export const LINT_SOURCE = "buf lint";
export const BREAKING_SOURCE = "buf breaking";

/** Diagnostics by absolute file; `general` holds a failure that names no file. */
export interface CheckFindings {
  byFile: Map<string, Diagnostic[]>;
  general?: string;
  /** The text each file had when checked (absolute path → text), to map findings onto edits since. */
  texts?: Map<string, string>;
  /** buf could not run with the module's buf.yaml or buf.lock (absolute path): what it said of it. */
  config?: { file: string; message: string };
}

/**
 * The module as buf's zip input: its files (paths relative to the module root, as on disk),
 * its config, and grpcrouter's embedded protos where its imports find them.
 */
function moduleZip(c: Compiled, files: Map<string, string>): Uint8Array {
  const entries: Record<string, Uint8Array> = {};
  for (const [rel, text] of files) entries[rel] = strToU8(text);
  for (const name of BUF_CONFIG_FILES) {
    const p = path.join(c.root, name);
    if (existsSync(p)) entries[name] = readFileSync(p);
  }
  // A buf.yaml v2 module under `path: proto` has import paths relative to proto/: find that
  // prefix from any module file, and put the embedded protos under it too.
  const [imp, abs] = [...c.importToFile][0] ?? [];
  const rel = abs ? path.relative(c.root, abs).split(path.sep).join("/") : "";
  const prefix = imp && rel.endsWith(imp) ? rel.slice(0, rel.length - imp.length) : "";
  for (const [name, text] of c.sources) if (!c.importToFile.has(name)) entries[prefix + name] = strToU8(text);
  return zipSync(entries, { level: 0 });
}

/** The module's own files as compiled: relative path → text. */
function compiledFiles(c: Compiled): Map<string, string> {
  const out = new Map<string, string>();
  for (const [imp, abs] of c.importToFile) {
    const text = c.sources.get(imp);
    if (text !== undefined) out.set(path.relative(c.root, abs).split(path.sep).join("/"), text);
  }
  return out;
}

interface BufFinding {
  path?: string;
  start_line?: number;
  start_column?: number;
  end_line?: number;
  end_column?: number;
  type?: string;
  message?: string;
}

/** buf's JSON findings (one object a line) as diagnostics on the module's own files. */
function parseFindings(c: Compiled, stdout: string, source: string, severity: DiagnosticSeverity): CheckFindings {
  const byFile = new Map<string, Diagnostic[]>();
  const own = new Map<string, string>();
  for (const [imp, abs] of c.importToFile) {
    own.set(imp, abs);
    own.set(path.relative(c.root, abs).split(path.sep).join("/"), abs);
  }
  const plain: string[] = [];
  for (const line of stdout.split("\n")) {
    const t = line.trim();
    if (!t) continue;
    let f: BufFinding;
    try {
      f = JSON.parse(t) as BufFinding;
    } catch {
      plain.push(t);
      continue;
    }
    // Findings in grpcrouter's embedded protos are not the user's to fix.
    const file = f.path ? own.get(f.path) : undefined;
    if (!file || typeof f.message !== "string") continue;
    const line0 = Math.max(0, (f.start_line ?? 1) - 1);
    const col0 = Math.max(0, (f.start_column ?? 1) - 1);
    const endLine0 = Math.max(line0, (f.end_line ?? f.start_line ?? 1) - 1);
    let endCol0 = Math.max(0, (f.end_column ?? f.start_column ?? 1) - 1);
    if (endLine0 === line0 && endCol0 <= col0) endCol0 = col0 + 1;
    const list = byFile.get(file) ?? [];
    list.push({
      range: { start: { line: line0, character: col0 }, end: { line: endLine0, character: endCol0 } },
      severity,
      message: f.message,
      source,
      ...(f.type ? { code: f.type } : {}),
    });
    byFile.set(file, list);
  }
  const texts = new Map<string, string>();
  for (const [imp, abs] of c.importToFile) {
    const text = c.sources.get(imp);
    if (text !== undefined) texts.set(abs, text);
  }
  return { byFile, texts, ...(plain.length ? { general: plain.join(" ") } : {}) };
}

/**
 * Whether the module's buf.yaml asks for lint rules (a `lint:` section, top-level or of a
 * module). Without one buf would apply its STANDARD rules, which a module that never chose
 * them is not written to: grpcrouter lints only what its owner configured.
 */
function lintConfigured(root: string): boolean {
  try {
    return /^\s*lint\s*:/m.test(readFileSync(path.join(root, "buf.yaml"), "utf8"));
  } catch {
    return false;
  }
}

/**
 * `buf lint` of the compiled module (which compiled: lint needs a good build), or undefined
 * when its buf.yaml asks for no lint rules (nothing was checked).
 */
export async function lint(c: Compiled, signal?: AbortSignal): Promise<CheckFindings | undefined> {
  if (!lintConfigured(c.root)) return undefined;
  const r = await runBuf(["lint", "-#format=zip", "--error-format=json"], {
    input: moduleZip(c, compiledFiles(c)),
    cwd: c.root,
    ...(signal ? { signal } : {}),
  });
  // 0: clean; 100: findings on stdout; anything else: buf itself failed. The module compiled,
  // so that is its config (an unknown rule in buf.yaml, a buf.lock it cannot read), unless
  // buf did not finish at all.
  if (r.status !== 0 && r.status !== 100) {
    const message = bufError(r);
    if (r.stopped || !r.stderr.trim()) return { byFile: new Map(), general: `buf lint failed: ${message}` };
    return { byFile: new Map(), config: { file: configFileNamed(c.root, message), message } };
  }
  return parseFindings(c, r.stdout, LINT_SOURCE, DiagnosticSeverity.Warning);
}

/** The git work tree that holds `dir`, or undefined. */
async function gitTop(dir: string): Promise<string | undefined> {
  try {
    const { stdout } = await execFileP("git", ["rev-parse", "--show-toplevel"], { cwd: dir });
    return stdout.trim() || undefined;
  } catch {
    return undefined;
  }
}

/** The old side of the last breaking checks, by work tree, folder and commit: a ref's tree never changes. */
const againstCache = new Map<string, Uint8Array>();

/**
 * The module at a git ref as buf's zip input. Not buf's own `.git#ref=…` input: the old files
 * import grpcrouter's options, which are on no disk, so they are read with `git archive` and
 * given the embedded protos like the current side.
 */
async function againstZip(c: Compiled, ref: string, signal?: AbortSignal): Promise<Uint8Array | string> {
  const top = await gitTop(c.root);
  if (!top) return `buf breaking: ${c.root} is not in a git repository`;
  const sub = path.relative(top, c.root).split(path.sep).join("/");
  let commit: string;
  try {
    commit = (await execFileP("git", ["rev-parse", "--verify", "--quiet", `${ref}^{commit}`], { cwd: top })).stdout.trim();
  } catch {
    return `buf breaking: no git ref ${JSON.stringify(ref)} in ${top} (grpcrouter.breaking.against)`;
  }
  const key = `${top}\0${sub}\0${commit}`;
  const cached = againstCache.get(key);
  if (cached) return cached;
  let archive: Buffer;
  try {
    const r = await execFileP("git", ["archive", "--format=zip", `${commit}:${sub}`], {
      cwd: top,
      encoding: "buffer",
      maxBuffer: 256 * 1024 * 1024,
      ...(signal ? { signal } : {}),
    });
    archive = r.stdout;
  } catch (e) {
    const stderr = (e as { stderr?: Buffer }).stderr?.toString("utf8").trim();
    return `buf breaking: cannot read ${sub || "."} at git ref ${JSON.stringify(ref)}: ${stderr || (e as Error).message}`;
  }
  const old = new Map<string, string>();
  const cfg = new Map<string, Uint8Array<ArrayBufferLike>>();
  for (const [name, bytes] of Object.entries(unzipSync(new Uint8Array(archive)))) {
    const text = name.endsWith(".proto") ? new TextDecoder().decode(bytes) : undefined;
    // Committed output (gen/*_router.proto) is never an input, as in the compile.
    if (text !== undefined && !isGenerated(text)) old.set(name, text);
    else if (BUF_CONFIG_FILES.includes(name)) cfg.set(name, bytes);
  }
  const oldZip: Record<string, Uint8Array<ArrayBufferLike>> = unzipSync(moduleZip(c, old));
  for (const [n, b] of cfg) oldZip[n] = b;
  const zip = zipSync(oldZip, { level: 0 });
  againstCache.clear();
  againstCache.set(key, zip);
  return zip;
}

/** `buf breaking` of the module as it is in the editor against the same module at a git ref. */
export async function breaking(c: Compiled, ref: string, signal?: AbortSignal): Promise<CheckFindings> {
  const zip = await againstZip(c, ref, signal);
  if (typeof zip === "string") return { byFile: new Map(), general: zip };
  const tmp = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-breaking-"));
  try {
    const against = path.join(tmp, "against.zip");
    writeFileSync(against, zip);
    const r = await runBuf(["breaking", "-#format=zip", "--against", against, "--error-format=json"], {
      input: moduleZip(c, compiledFiles(c)),
      cwd: c.root,
      ...(signal ? { signal } : {}),
    });
    if (r.status !== 0 && r.status !== 100) return { byFile: new Map(), general: `buf breaking against ${ref} failed: ${bufError(r)}` };
    return parseFindings(c, r.stdout, BREAKING_SOURCE, DiagnosticSeverity.Warning);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
