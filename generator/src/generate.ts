// Runs the four phases over a module and returns the output tree without writing it.
// The same core (generateFromDescriptors) serves the in-process API and the protoc plugin.
import { createHash } from "node:crypto";
import path from "node:path";
import { create, createFileRegistry, type DescFile, type FileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import { compileModule, type CompiledModule, type Overlay } from "./compiler/compile.js";
import { generalDiagnostic, hasErrors, type Diagnostic } from "./diagnostics.js";
import { grpcrouterProtos, OPTIONS_PROTO, TUNNEL_PROTO } from "./grpcrouter-protos.js";
import { GENERATED_MARKER } from "./marker.js";
import { buildRouterProtos, previousFromDir } from "./phases/phase1-router-proto.js";
import { EsGenerator, runPlugin, transitiveKeys, type DescriptorInput, type PluginOutput } from "./phases/phase2-es.js";
import { phase3Plugin } from "./phases/phase3-router.js";
import { phase4Plugin } from "./phases/phase4-bridge.js";
import type { PreviousRouterProtos, RouterFilePlan, RouterPlan } from "./phases/router-proto/plan.js";

export interface OutputFile {
  /** Relative to the output folder, "/"-separated. */
  path: string;
  content: string;
}

export type GeneratePhase = "compile" | "router-proto" | "standard-code" | "typed-router" | "bridge" | "done";

export interface GenerateProgress {
  phase: GeneratePhase;
  message: string;
}

export interface GenerateOptions {
  /** The module folder (buf.yaml or the folder of the .proto files). */
  root: string;
  /** The output folder (absolute or relative to the current directory); read for previous router protos. */
  out: string;
  overlay?: Overlay;
  signal?: AbortSignal;
  onProgress?: (p: GenerateProgress) => void;
  /** Phases 3 and 4 (`_router.ts`, `_bridge.ts`); default TUNNEL_CODE_DEFAULT. */
  tunnelCode?: boolean;
}

/**
 * Whether phases 3 and 4 run unless told otherwise. Their output imports createRouter and
 * createBridge from @grpcrouter/runtime; GRPCROUTER_TUNNEL_CODE=0/1 overrides the default.
 */
export const TUNNEL_CODE_DEFAULT = true;

export function tunnelCodeDefault(): boolean {
  const env = process.env.GRPCROUTER_TUNNEL_CODE;
  return env === "1" ? true : env === "0" ? false : TUNNEL_CODE_DEFAULT;
}

export interface GenerateResult {
  diagnostics: Diagnostic[];
  /** Sorted by path; empty when there are errors. */
  files: OutputFile[];
  /** The method → field number tables; undefined when compilation failed. */
  plan?: RouterPlan;
  compiled: CompiledModule;
}

// Per module root: protoc-gen-es outputs of unchanged files are reused between runs.
const esGenerators = new Map<string, EsGenerator>();

export async function generate(options: GenerateOptions): Promise<GenerateResult> {
  const progress = options.onProgress ?? (() => {});
  const root = path.resolve(options.root);
  const out = path.resolve(options.out);
  progress({ phase: "compile", message: "compiling with buf" });
  const compiled = await compileModule({ root, ...withOptional(options), exclude: [out] });
  options.signal?.throwIfAborted();
  if (hasErrors(compiled.diagnostics) || !compiled.fileDescriptorSet || !compiled.registry) {
    return { diagnostics: compiled.diagnostics, files: [], compiled };
  }
  let es = esGenerators.get(root);
  if (!es) esGenerators.set(root, (es = new EsGenerator()));
  const core = generateFromDescriptors({
    protos: compiled.fileDescriptorSet.file,
    hashes: compiled.fileHashes,
    registry: compiled.registry,
    files: compiled.files,
    previous: previousFromDir(out),
    sourcePath: (p) => compiled.sourcePaths.get(p) ?? p,
    userCode: true,
    tunnelCode: options.tunnelCode ?? tunnelCodeDefault(),
    es,
    onProgress: progress,
  });
  progress({ phase: "done", message: `${core.files.length} files` });
  return { diagnostics: [...compiled.diagnostics, ...core.diagnostics], files: core.files, plan: core.plan, compiled };
}

function withOptional(o: GenerateOptions): { overlay?: Overlay; signal?: AbortSignal } {
  return { ...(o.overlay ? { overlay: o.overlay } : {}), ...(o.signal ? { signal: o.signal } : {}) };
}

export interface CoreInput {
  /** Every descriptor (module files and all imports) in dependency order. */
  protos: readonly FileDescriptorProto[];
  /** Content hashes by file name; files without one are hashed here. */
  hashes?: ReadonlyMap<string, string>;
  registry: FileRegistry;
  /** The module's own files (import paths). */
  files: readonly string[];
  previous?: PreviousRouterProtos;
  sourcePath?: (importPath: string) => string;
  /** Also generate `_pb.ts` of the module's own files (false when protoc-gen-es runs beside us in buf.gen.yaml). */
  userCode: boolean;
  /** Run phases 3 and 4 (default: tunnelCodeDefault()). */
  tunnelCode?: boolean;
  es?: EsGenerator;
  onProgress?: (p: GenerateProgress) => void;
}

export interface CoreResult {
  diagnostics: Diagnostic[];
  files: OutputFile[];
  plan: RouterPlan;
}

export function generateFromDescriptors(input: CoreInput): CoreResult {
  const progress = input.onProgress ?? (() => {});
  progress({ phase: "router-proto", message: "router protos" });
  const routerProtos = buildRouterProtos({
    registry: input.registry,
    files: input.files,
    ...(input.previous ? { previous: input.previous } : {}),
    ...(input.sourcePath ? { sourcePath: input.sourcePath } : {}),
  });
  const diagnostics = [...routerProtos.plan.diagnostics];
  if (hasErrors(diagnostics)) return { diagnostics, files: [], plan: routerProtos.plan };

  const files: OutputFile[] = routerProtos.protos.map((p) => ({ path: p.path, content: p.text }));
  const moduleFiles = new Set(input.files);
  const byName = new Map(input.protos.map((p) => [p.name, p]));
  if (routerProtos.protos.length > 0 && !byName.has(TUNNEL_PROTO)) {
    diagnostics.push(generalDiagnostic(`${TUNNEL_PROTO} is missing from the compiled files`, "grpcrouter"));
    return { diagnostics, files: [], plan: routerProtos.plan };
  }

  // grpcrouter's own protos join the output tree when anything there imports them, so the
  // tree compiles (and type-checks) on its own.
  const ours: string[] = [];
  if (routerProtos.protos.length > 0 && !moduleFiles.has(TUNNEL_PROTO)) ours.push(TUNNEL_PROTO);
  if (!moduleFiles.has(OPTIONS_PROTO) && input.userCode && importsTransitively(input.files, OPTIONS_PROTO, byName)) ours.push(OPTIONS_PROTO);
  for (const name of ours) files.push({ path: name, content: `${GENERATED_MARKER}\n${grpcrouterProtos[name]}` });

  progress({ phase: "standard-code", message: "protoc-gen-es" });
  const descriptors: DescriptorInput[] = [
    ...input.protos.map((proto) => ({ proto, hash: input.hashes?.get(proto.name) ?? hashText(proto.name) })),
    ...routerProtos.protos.map((p) => ({ proto: p.descriptor, hash: hashText(p.text) })),
  ];
  // Without cached hashes we cannot tell changes apart; never reuse outputs then.
  const es = input.hashes ? (input.es ?? new EsGenerator()) : new EsGenerator();
  const toGenerate = [...(input.userCode ? input.files : []), ...routerProtos.protos.map((p) => p.path), ...ours];
  const tsOutputs: PluginOutput[] = es.generate(descriptors, toGenerate);

  const withServices = routerProtos.plan.files;
  if (withServices.length > 0 && (input.tunnelCode ?? tunnelCodeDefault())) {
    // Phases 3 and 4 of a file depend on its descriptor, its imports and its plan: reuse the
    // outputs of files where none of these changed (a save regenerates only what it affects).
    const keys = transitiveKeys(descriptors);
    const keyOf = (f: RouterFilePlan) => `${keys.get(f.file)}|${JSON.stringify(f)}`;
    const misses = withServices.filter((f) => es.tunnelCode.get(f.file)?.key !== keyOf(f));
    if (misses.length > 0) {
      const allProtos = descriptors.map((d) => d.proto);
      const planByFile = new Map<string, RouterFilePlan>(misses.map((f) => [f.file, f]));
      const planFor = (f: DescFile) => planByFile.get(f.proto.name);
      const generateFor = misses.map((f) => f.file);
      // Phases 3 and 4 see the router protos next to the user's files.
      const routerFiles = misses.map((f) => f.routerFile);
      const params = "target=ts,import_extension=js";
      progress({ phase: "typed-router", message: "typed routers" });
      const outputs = runPlugin(phase3Plugin(planFor), allProtos, generateFor, params, routerFiles);
      progress({ phase: "bridge", message: "service bridges" });
      outputs.push(...runPlugin(phase4Plugin(planFor), allProtos, generateFor, params, routerFiles));
      for (const f of misses) {
        const stem = f.file.replace(/\.proto$/, "");
        const mine = outputs.filter((o) => o.path === `${stem}_router.ts` || o.path === `${stem}_bridge.ts`);
        es.tunnelCode.set(f.file, { key: keyOf(f), outputs: mine });
      }
    }
    const live = new Set(withServices.map((f) => f.file));
    for (const n of es.tunnelCode.keys()) if (!live.has(n)) es.tunnelCode.delete(n);
    tsOutputs.push(...withServices.flatMap((f) => es.tunnelCode.get(f.file)!.outputs));
  }
  for (const o of tsOutputs) files.push({ path: o.path, content: `${GENERATED_MARKER}\n${o.content}` });
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { diagnostics, files, plan: routerProtos.plan };
}

function importsTransitively(files: readonly string[], target: string, byName: Map<string, FileDescriptorProto>): boolean {
  const seen = new Set<string>();
  const stack = [...files];
  while (stack.length) {
    const n = stack.pop()!;
    if (n === target) return true;
    if (seen.has(n)) continue;
    seen.add(n);
    stack.push(...(byName.get(n)?.dependency ?? []));
  }
  return false;
}

function hashText(s: string): string {
  return createHash("sha1").update(s).digest("hex");
}

/** A registry over descriptors, for callers that hold a request's files. */
export function registryFromProtos(protos: readonly FileDescriptorProto[]): FileRegistry {
  return createFileRegistry(create(FileDescriptorSetSchema, { file: [...protos] }));
}
