// Phase 2: protoc-gen-es, run in-process through its protoplugin interface (no protoc), on
// the module's files and the router protos: `<name>_pb.ts` and `<name>_router_pb.ts`.
// Outputs are cached per file by a key over the file's descriptor and its imports' keys, so
// a warm run only regenerates the files whose own descriptor or whose imports changed.
import { create } from "@bufbuild/protobuf";
import { CodeGeneratorRequestSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import type { Plugin } from "@bufbuild/protoplugin";
import { protocGenEs } from "@bufbuild/protoc-gen-es/dist/cjs/src/protoc-gen-es-plugin.js";

export const ES_PARAMETER = "target=ts,import_extension=js";

export interface PluginOutput {
  path: string;
  content: string;
}

export interface DescriptorInput {
  proto: FileDescriptorProto;
  /** Identity of the descriptor's content (not of its imports). */
  hash: string;
}

/**
 * Runs any protoplugin plugin in-process on `files` (dependency order), generating
 * `toGenerate`; the request holds their imports and `alsoInclude` (with its imports).
 */
export function runPlugin(
  plugin: Plugin,
  files: readonly FileDescriptorProto[],
  toGenerate: readonly string[],
  parameter: string,
  alsoInclude: readonly string[] = [],
): PluginOutput[] {
  if (toGenerate.length === 0) return [];
  const wanted = closure(files, [...toGenerate, ...alsoInclude]);
  const request = create(CodeGeneratorRequestSchema, {
    fileToGenerate: [...toGenerate],
    parameter,
    protoFile: files.filter((f) => wanted.has(f.name)),
  });
  const response = plugin.run(request);
  if (response.error) throw new Error(`${plugin.name}: ${response.error}`);
  return response.file.map((f) => ({ path: f.name, content: f.content }));
}

/** The names of `toGenerate` and everything they import, transitively. */
function closure(files: readonly FileDescriptorProto[], toGenerate: readonly string[]): Set<string> {
  const byName = new Map(files.map((f) => [f.name, f]));
  const out = new Set<string>();
  const visit = (n: string) => {
    if (out.has(n)) return;
    out.add(n);
    for (const d of byName.get(n)?.dependency ?? []) visit(d);
  };
  toGenerate.forEach(visit);
  return out;
}

export class EsGenerator {
  private cache = new Map<string, { key: string; outputs: PluginOutput[] }>();
  /** Phases 3 and 4 outputs by module file, kept by generate.ts under the same kind of key. */
  readonly tunnelCode = new Map<string, { key: string; outputs: PluginOutput[] }>();

  constructor(
    private readonly plugin: Plugin = protocGenEs,
    private readonly parameter = ES_PARAMETER,
  ) {}

  /** `_pb.ts` for each of `toGenerate`; `files` holds every descriptor they may import, in dependency order. */
  generate(files: readonly DescriptorInput[], toGenerate: readonly string[]): PluginOutput[] {
    const keys = transitiveKeys(files);
    const misses = toGenerate.filter((n) => this.cache.get(n)?.key !== keys.get(n));
    if (misses.length > 0) {
      const outputs = runPlugin(
        this.plugin,
        files.map((f) => f.proto),
        misses,
        this.parameter,
      );
      for (const n of misses) {
        const stem = n.replace(/\.proto$/, "");
        this.cache.set(n, { key: keys.get(n)!, outputs: outputs.filter((o) => o.path.startsWith(stem + "_pb.")) });
      }
    }
    // Files that left the module leave the cache too, so it never grows without bound.
    const live = new Set(files.map((f) => f.proto.name));
    for (const n of this.cache.keys()) if (!live.has(n)) this.cache.delete(n);
    return toGenerate.flatMap((n) => this.cache.get(n)!.outputs);
  }
}

/** key(f) = f's own hash + the keys of its imports: equal keys give equal generated code. */
export function transitiveKeys(files: readonly DescriptorInput[]): Map<string, string> {
  const keys = new Map<string, string>();
  for (const f of files) {
    // Dependency order: every import is already keyed.
    keys.set(f.proto.name, f.hash + "|" + f.proto.dependency.map((d) => keys.get(d) ?? d).join(","));
  }
  return keys;
}
