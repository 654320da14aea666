// Phase 1 — router protos. For every module file with services, `<name>_router.proto` next to
// it in the output tree: per service S, `SRouter` with its Register stream and the typed
// frames of grpcrouter/v1/tunnel.proto's layout. Runnable in-process (buildRouterProtos) and
// as a protoplugin plugin (phase1Plugin).
import { readFileSync } from "node:fs";
import path from "node:path";
import { create, createFileRegistry } from "@bufbuild/protobuf";
import { CodeGeneratorResponseSchema, FileDescriptorSetSchema, type CodeGeneratorRequest } from "@bufbuild/protobuf/wkt";
import type { Plugin } from "@bufbuild/protoplugin";
import { formatDiagnostic, hasErrors } from "../diagnostics.js";
import { PLUGIN_VERSION } from "../version.js";
import { emitRouterProto, type EmittedRouterProto } from "./router-proto/emit.js";
import { routerPlan, type RouterPlan, type RouterPlanInput } from "./router-proto/plan.js";

export interface RouterProtos {
  plan: RouterPlan;
  /** Empty when the plan has errors. */
  protos: EmittedRouterProto[];
}

export function buildRouterProtos(input: RouterPlanInput): RouterProtos {
  const plan = routerPlan(input);
  if (hasErrors(plan.diagnostics)) return { plan, protos: [] };
  return { plan, protos: plan.files.map(emitRouterProto) };
}

/** Reads previous router protos below `dir` (where an earlier run wrote its output). */
export function previousFromDir(dir: string): (routerFile: string) => string | undefined {
  return (routerFile) => {
    try {
      return readFileSync(path.join(dir, routerFile), "utf8");
    } catch {
      return undefined;
    }
  };
}

/**
 * Plugin parameters shared by the grpcrouter plugins: `previous=DIR` (earlier output, for
 * stable numbers), `tunnel_code=true|false` (phases 3 and 4).
 */
export function parseParameter(parameter: string): { previous?: string; tunnelCode?: boolean } {
  const out: { previous?: string; tunnelCode?: boolean } = {};
  for (const part of parameter.split(",").filter(Boolean)) {
    const [k, v = ""] = part.split("=", 2) as [string, string?];
    if (k === "previous") out.previous = v;
    else if (k === "tunnel_code") {
      if (v !== "true" && v !== "false") throw new Error(`tunnel_code=${v}: expected true or false`);
      out.tunnelCode = v === "true";
    } else if (k === "target" || k === "import_extension")
      continue; // accepted for symmetry with protoc-gen-es
    else throw new Error(`unknown option "${k}" (known: previous=DIR, tunnel_code=true|false)`);
  }
  return out;
}

export function registryOf(request: CodeGeneratorRequest) {
  return createFileRegistry(create(FileDescriptorSetSchema, { file: request.protoFile }));
}

/** Phase 1 alone as a protoc/buf plugin: emits the `_router.proto` files. */
export const phase1Plugin: Plugin = {
  name: "protoc-gen-grpcrouter-router-proto",
  version: PLUGIN_VERSION,
  run(request) {
    const { previous } = parseParameter(request.parameter);
    const result = buildRouterProtos({
      registry: registryOf(request),
      files: request.fileToGenerate,
      ...(previous !== undefined ? { previous: previousFromDir(previous) } : {}),
    });
    if (hasErrors(result.plan.diagnostics)) {
      return create(CodeGeneratorResponseSchema, { error: result.plan.diagnostics.map(formatDiagnostic).join("\n") });
    }
    return create(CodeGeneratorResponseSchema, { file: result.protos.map((p) => ({ name: p.path, content: p.text })) });
  },
};
