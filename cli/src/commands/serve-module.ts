// What `grpcrouter serve` routes, straight from a proto module: compile it in memory (buf),
// plan its router protos (phase 1 of the generator, the same frame field numbers a generated
// bridge uses) and declare one tunnel per service. No code is generated or written.
import { readFileSync } from "node:fs";
import path from "node:path";
import type { DescFile, DescService, FileRegistry } from "@bufbuild/protobuf";
import { buildRouterProtos, compileModule, hasErrors, type Diagnostic } from "@grpcrouter/generator";
import { defineTunnel, type TunnelSpec } from "@grpcrouter/runtime";

export interface ServedModule {
  /** Equal keys: the same services with the same methods, types and field numbers. */
  key: string;
  /** The same, per service: a reload replaces only the services whose key changed. */
  serviceKeys: Map<string, string>;
  specs: TunnelSpec[];
  /** The files declaring the routed services (reflection describes them and their imports). */
  files: DescFile[];
  registry: FileRegistry;
  /** For the admin snapshot: routed service → method names. */
  services: { name: string; methods: string[] }[];
  /** Router protos as planned, by path: the previous numbers for the next reload. */
  routerProtos: Map<string, string>;
  diagnostics: Diagnostic[];
}

export type LoadResult = { ok: true; module: ServedModule } | { ok: false; diagnostics: Diagnostic[] };

export interface LoadOptions {
  root: string;
  /** Where `grpcrouter generate` writes (default root/gen): its router protos fix the numbers. */
  out?: string;
  /** Router protos of the running configuration; they win over the output folder's. */
  previous?: ReadonlyMap<string, string>;
  signal?: AbortSignal;
}

export async function loadServedModule(options: LoadOptions): Promise<LoadResult> {
  const root = path.resolve(options.root);
  const out = path.resolve(root, options.out ?? "gen");
  const compiled = await compileModule({ root, exclude: [out], ...(options.signal ? { signal: options.signal } : {}) });
  if (hasErrors(compiled.diagnostics) || !compiled.registry) return { ok: false, diagnostics: compiled.diagnostics };
  const registry = compiled.registry;
  const previous = (routerFile: string): string | undefined => {
    const running = options.previous?.get(routerFile);
    if (running !== undefined) return running;
    try {
      return readFileSync(path.join(out, routerFile), "utf8");
    } catch {
      return undefined;
    }
  };
  const { plan, protos } = buildRouterProtos({
    registry,
    files: compiled.files,
    previous,
    sourcePath: (p) => compiled.sourcePaths.get(p) ?? p,
  });
  const diagnostics = [...compiled.diagnostics, ...plan.diagnostics];
  if (hasErrors(plan.diagnostics)) return { ok: false, diagnostics };

  const specs: TunnelSpec[] = [];
  const files = new Map<string, DescFile>();
  const services: ServedModule["services"] = [];
  const serviceKeys = new Map<string, string>();
  for (const sp of [...plan.services.values()].sort((a, b) => a.service.localeCompare(b.service))) {
    const service = registry.getService(sp.service) as DescService | undefined;
    if (!service) continue;
    const fields = Object.fromEntries(sp.methods.map((m) => [m.name, m.fieldNumber]));
    specs.push(defineTunnel(service, sp.routerService, fields));
    files.set(service.file.proto.name, service.file);
    services.push({ name: sp.service, methods: sp.methods.map((m) => m.name) });
    serviceKeys.set(
      sp.service,
      `${sp.routerService}:` +
        // What the tunnel depends on; message fields may change under a running router (it
        // never decodes payloads), so editing a message keeps the service's live streams.
        sp.methods.map((m) => `${m.name}=${m.fieldNumber}/${m.kind}/${m.requestType}/${m.responseType}`).join(","),
    );
  }
  if (specs.length === 0) {
    return {
      ok: false,
      diagnostics: [
        ...diagnostics,
        { file: "", line: 1, column: 1, endLine: 1, endColumn: 1, severity: "error", message: `no service to route in ${root}`, source: "grpcrouter" },
      ],
    };
  }
  const routerProtos = new Map(protos.map((p) => [p.path, p.text]));
  const key = [...serviceKeys].map(([s, k]) => `${s}>${k}`).join("\n");
  return { ok: true, module: { key, serviceKeys, specs, files: [...files.values()], registry, services, routerProtos, diagnostics } };
}
