// Phase 4 — service bridge (`<name>_bridge.ts`). For each service S of a file:
//
//   export function createSBridge(impl: Partial<ServiceImpl<typeof S>>, options: ConnectBridgeOptions): Bridge
//
// (ConnectBridgeOptions: the runtime's BridgeOptions plus Connect handler options such as interceptors.)
//
// `impl` is exactly what a Connect service already has (@connectrpc/connect's ServiceImpl), so
// it drops in unchanged; the tunnel (frame field numbers) comes from the router file of phase 3.
import type { DescFile } from "@bufbuild/protobuf";
import type { GeneratedFile, Plugin } from "@bufbuild/protoplugin";
import { RUNTIME_MODULE } from "./phase3-router.js";
import type { RouterFilePlan } from "./router-proto/plan.js";
import { routerModule, serviceTsNames } from "./tunnel-code/names.js";
import { tunnelCodePlugin, type TunnelCodeInput } from "./tunnel-code/plugin.js";

export function emitServiceBridge(f: GeneratedFile, input: TunnelCodeInput): void {
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
  return tunnelCodePlugin({ name: "protoc-gen-grpcrouter-bridge", phase: 4, suffix: "_bridge.ts", emit: emitServiceBridge }, planFor);
}
