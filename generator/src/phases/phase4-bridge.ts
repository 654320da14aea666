// Phase 4 — service bridge (`<name>_bridge.ts`). For each service S of a file:
//
//   export function createSBridge(impl: Partial<ServiceImpl<typeof S>>, options: ConnectBridgeOptions): Bridge
//
// (ConnectBridgeOptions: the runtime's BridgeOptions plus Connect handler options such as interceptors.)
//
// `impl` is exactly what a Connect service already has (@connectrpc/connect's ServiceImpl), so
// it drops in unchanged; the tunnel (frame field numbers) comes from the router file of phase 3.
import type { DescFile } from "@bufbuild/protobuf";
import { createEcmaScriptPlugin, type GeneratedFile, type Plugin } from "@bufbuild/protoplugin";
import { PLUGIN_VERSION } from "../version.js";
import { RUNTIME_MODULE } from "./phase3-router.js";
import type { RouterFilePlan } from "./router-proto/plan.js";
import { routerModule, serviceTsNames } from "./tunnel-code/names.js";

export interface ServiceBridgeInput {
  /** The user's .proto file (its services are `file.services`). */
  file: DescFile;
  /** The generated router proto of `file` (frame messages, `SRouter` services), as a descriptor. */
  routerFile: DescFile;
  plan: RouterFilePlan;
}

export function emitServiceBridge(f: GeneratedFile, input: ServiceBridgeInput): void {
  const { file, plan } = input;
  const names = serviceTsNames(file);
  f.preamble(file);
  for (const sp of plan.services) {
    const service = file.services.find((s) => s.typeName === sp.service);
    if (!service) throw new Error(`phase 4: service ${sp.service} is not in ${file.name}`);
    const n = names.get(service)!;
    f.print(
      f.jsDoc(
        `Connects an implementation of ${sp.service} to a router: the bridge dials out, registers, and\nserves the calls the router tunnels to it. \`impl\` is a Connect ServiceImpl, unchanged.\n\n  const bridge = ${n.createBridge}(impl, { router: "localhost:9090" });\n  await bridge.start();   // …  await bridge.stop();`,
      ),
    );
    f.print(
      f.export("function", n.createBridge),
      "(impl: Partial<",
      f.import("ServiceImpl", "@connectrpc/connect", true),
      "<typeof ",
      f.importSchema(service, true),
      ">>, options: ",
      f.import("ConnectBridgeOptions", RUNTIME_MODULE, true),
      "): ",
      f.import("Bridge", RUNTIME_MODULE, true),
      " {",
    );
    f.print("  return ", f.import("createBridge", RUNTIME_MODULE), "(", f.import(n.tunnel, routerModule(file)), ", impl, options);");
    f.print("}");
    f.print();
  }
}

/** The phase as a protoplugin plugin; `planFor` gives the router plan of a file (undefined: no services). */
export function phase4Plugin(planFor: (file: DescFile) => RouterFilePlan | undefined): Plugin {
  return createEcmaScriptPlugin({
    name: "protoc-gen-grpcrouter-bridge",
    version: PLUGIN_VERSION,
    generateTs(schema) {
      for (const file of schema.files) {
        const plan = planFor(file);
        if (!plan) continue;
        const routerFile = schema.allFiles.find((f) => f.proto.name === plan.routerFile);
        if (!routerFile) throw new Error(`phase 4: ${plan.routerFile} is missing from the request`);
        emitServiceBridge(schema.generateFile(file.name + "_bridge.ts"), { file, routerFile, plan });
      }
    },
  });
}
