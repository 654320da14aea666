// What phases 3 and 4 share: their input, and the protoplugin plugin that runs one of them
// over every file with services (the router proto of each file is in the same request).
import type { DescFile } from "@bufbuild/protobuf";
import { createEcmaScriptPlugin, type GeneratedFile, type Plugin } from "@bufbuild/protoplugin";
import { PLUGIN_VERSION } from "../../version.js";
import type { RouterFilePlan } from "../router-proto/plan.js";

export interface TunnelCodeInput {
  /** The user's .proto file (its services are `file.services`). */
  file: DescFile;
  /** The generated router proto of `file` (frame messages, `SRouter` services), as a descriptor. */
  routerFile: DescFile;
  plan: RouterFilePlan;
}

/**
 * A plugin writing `<file><suffix>` with `emit` for every file that `planFor` plans
 * (undefined: no services).
 */
export function tunnelCodePlugin(
  options: { name: string; phase: number; suffix: string; emit: (f: GeneratedFile, input: TunnelCodeInput) => void },
  planFor: (file: DescFile) => RouterFilePlan | undefined,
): Plugin {
  return createEcmaScriptPlugin({
    name: options.name,
    version: PLUGIN_VERSION,
    generateTs(schema) {
      for (const file of schema.files) {
        const plan = planFor(file);
        if (!plan) continue;
        const routerFile = schema.allFiles.find((f) => f.proto.name === plan.routerFile);
        if (!routerFile) throw new Error(`phase ${options.phase}: ${plan.routerFile} is missing from the request`);
        options.emit(schema.generateFile(file.name + options.suffix), { file, routerFile, plan });
      }
    },
  });
}
