// Phase 3 — typed router (`<name>_router.ts`). NOT IMPLEMENTED YET: this slot emits nothing.
//
// Whoever fills it in: `emitTypedRouter` is called once per .proto file that declares services,
// with the router plan of that file (method → field number table, routing keys, balancer) and
// a GeneratedFile already named `<name>_router.ts`. Print TypeScript that imports
// "@grpcrouter/runtime" (use f.import / f.importSchema so imports resolve in the output tree);
// the frame schemas are in `<name>_router_pb.ts` (phase 2), the service in `<name>_pb.ts`.
// A file nothing is printed to is dropped from the output.
import type { DescFile } from "@bufbuild/protobuf";
import { createEcmaScriptPlugin, type GeneratedFile, type Plugin } from "@bufbuild/protoplugin";
import { PLUGIN_VERSION } from "../version.js";
import type { RouterFilePlan } from "./router-proto/plan.js";

export interface TypedRouterInput {
  /** The user's .proto file (its services are `file.services`). */
  file: DescFile;
  /** The generated router proto of `file` (frame messages, `SRouter` services), as a descriptor. */
  routerFile: DescFile;
  plan: RouterFilePlan;
}

export function emitTypedRouter(_f: GeneratedFile, _input: TypedRouterInput): void {
  // Intentionally empty until phase 3 is written.
}

/** The phase as a protoplugin plugin; `planFor` gives the router plan of a file (undefined: no services). */
export function phase3Plugin(planFor: (file: DescFile) => RouterFilePlan | undefined): Plugin {
  return createEcmaScriptPlugin({
    name: "protoc-gen-grpcrouter-router",
    version: PLUGIN_VERSION,
    generateTs(schema) {
      for (const file of schema.files) {
        const plan = planFor(file);
        if (!plan) continue;
        const routerFile = schema.allFiles.find((f) => f.proto.name === plan.routerFile);
        if (!routerFile) throw new Error(`phase 3: ${plan.routerFile} is missing from the request`);
        emitTypedRouter(schema.generateFile(file.name + "_router.ts"), { file, routerFile, plan });
      }
    },
  });
}
