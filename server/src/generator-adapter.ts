// The one file through which the language server uses @grpcrouter/generator. Everything the
// server needs from the compiler and the generator passes here, in the shapes the editor
// features want, so a change of the generator's API is a change of this file alone.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import type { FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import * as generator from "@grpcrouter/generator";

export type Diagnostic = generator.Diagnostic;
export const formatDiagnostic = generator.formatDiagnostic;

/** What the router proto says about one method: its oneof field in both frame messages. */
export interface FrameInfo {
  fieldNumber: number;
  kind: generator.MethodKind;
  /** Fully-qualified names of the frame messages, e.g. `demo.v1.EchoRouterFrame`. */
  routerFrame: string;
  instanceFrame: string;
}

export interface Compiled {
  root: string;
  /** Descriptors with source info of the module's files and their imports; undefined on error. */
  descriptors: FileDescriptorProto[] | undefined;
  diagnostics: Diagnostic[];
  /** Import path ("demo/v1/echo.proto") → absolute path on disk, for the module's own files. */
  importToFile: Map<string, string>;
  /** Import path → text compiled, for files that are not on disk (grpcrouter's own protos). */
  sources: ReadonlyMap<string, string>;
  /** Method fqn (`demo.v1.Echo.Say`) → its frame field in the generated router proto. */
  frames: Map<string, FrameInfo>;
}

export interface CompileRequest {
  root: string;
  overlay: Map<string, string>;
  signal?: AbortSignal;
  /** The output folder: never compiled as sources, and read for the previous router protos. */
  out: string;
  /** Files (absolute) left out, e.g. broken ones while recovering an index of the rest. */
  exclude?: string[];
}

export async function compile(req: CompileRequest): Promise<Compiled> {
  const c = await generator.compileModule({ root: req.root, overlay: req.overlay, signal: req.signal, exclude: [req.out, ...(req.exclude ?? [])] });
  const importToFile = new Map<string, string>();
  for (const [imp, rel] of c.sourcePaths) importToFile.set(imp, path.join(c.root, rel));
  const diagnostics = [...c.diagnostics];
  const frames = new Map<string, FrameInfo>();
  if (c.registry && !generator.hasErrors(c.diagnostics)) {
    // Phase 1's plan validates the routing options (e.g. a routing-key field path that does
    // not exist) and numbers the frames; it reads no more than descriptors, so it is cheap
    // enough for every keystroke. The previous router protos in `out` keep numbers stable.
    const plan = generator.routerPlan({
      registry: c.registry,
      files: c.files,
      previous: (routerFile) => readOrUndefined(path.join(req.out, routerFile)),
      sourcePath: (p) => c.sourcePaths.get(p) ?? p,
    });
    diagnostics.push(...plan.diagnostics);
    for (const s of plan.services.values()) {
      for (const m of s.methods) {
        frames.set(`${s.service}.${m.name}`, {
          fieldNumber: m.fieldNumber,
          kind: m.kind,
          routerFrame: qualify(s.package, s.names.routerFrame),
          instanceFrame: qualify(s.package, s.names.instanceFrame),
        });
      }
    }
  }
  return { root: c.root, descriptors: c.fileDescriptorSet?.file, diagnostics, importToFile, sources: c.sources, frames };
}

let bufVersionMemo: string | null | undefined;

/**
 * The version of the buf binary the compiler runs (`1.75.0`), or undefined when it cannot
 * say. The well-known types are built into buf, so their printed copies are cached by it.
 */
export function bufVersion(): string | undefined {
  if (bufVersionMemo === undefined) {
    try {
      const v = execFileSync(generator.findBuf(), ["--version"], { encoding: "utf8", timeout: 10_000, stdio: ["ignore", "pipe", "pipe"] }).trim();
      bufVersionMemo = /^[\w.+-]+$/.test(v) ? v : null;
    } catch {
      bufVersionMemo = null;
    }
  }
  return bufVersionMemo ?? undefined;
}

const qualify = (pkg: string, name: string) => (pkg ? `${pkg}.${name}` : name);

/** A file's text, or undefined when it cannot be read (gone, a folder, no permission). */
export function readOrUndefined(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

export interface GenerateRequest {
  root: string;
  out: string;
  overlay: Map<string, string>;
  signal?: AbortSignal;
  onProgress?: (message: string, percent?: number) => void;
}

export interface GenerateOutcome {
  diagnostics: Diagnostic[];
  /** Undefined when nothing was written because of errors. */
  written?: generator.WriteResult;
}

const PHASE_PERCENT: Record<generator.GeneratePhase, number> = {
  compile: 5,
  "router-proto": 30,
  "standard-code": 45,
  "typed-router": 70,
  bridge: 85,
  done: 95,
};

export async function generateAndWrite(req: GenerateRequest): Promise<GenerateOutcome> {
  const r = await generator.generate({
    root: req.root,
    out: req.out,
    overlay: req.overlay,
    signal: req.signal,
    onProgress: (p) => req.onProgress?.(p.message, PHASE_PERCENT[p.phase]),
  });
  // A broken module must never wipe good output: write only a complete, error-free result.
  if (generator.hasErrors(r.diagnostics)) return { diagnostics: r.diagnostics };
  req.signal?.throwIfAborted();
  const written = await generator.writeOutputs(req.out, r.files);
  return { diagnostics: r.diagnostics, written };
}

export interface CheckOutcome {
  diagnostics: Diagnostic[];
  /** Output files that are stale, missing or no longer produced (relative to `out`). */
  outdated: string[];
}

export async function checkOutputs(req: GenerateRequest): Promise<CheckOutcome> {
  const r = await generator.generate({ root: req.root, out: req.out, overlay: req.overlay, signal: req.signal });
  if (generator.hasErrors(r.diagnostics)) return { diagnostics: r.diagnostics, outdated: [] };
  const c = await generator.checkOutputs(req.out, r.files);
  return { diagnostics: r.diagnostics, outdated: [...c.stale, ...c.missing, ...c.extra].sort() };
}

/** Runs the buf binary the compiler runs (bundled in the VSIX, $GRPCROUTER_BUF, or node_modules). */
export const runBuf = generator.runBuf;
/** Whether a file is grpcrouter output (it carries the generated marker). */
export const isGenerated = generator.isGenerated;
