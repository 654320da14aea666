// Phase 3 — typed router (`<name>_router.ts`). For each service S of a file:
//
//   export const STunnel = defineTunnel(S, "pkg.SRouter", { Method: 16, ... });   // = the router proto's numbers
//   export interface SRoutingKeys { method?: RoutingKeyHook<typeof MethodRequestSchema>; ... }
//   export interface SRouterOptions extends Omit<RouterOptions, "services"> { routingKeys?; balancer?; rateLimit? }
//   export function sRouterService(options?): RouterServiceOptions<typeof S>   // for a router of several services
//   export function createSRouter(options?): Router
//
// A hook's `request` is typed only for methods whose client sends one message (unary, server
// streaming): for the others the router has no message at call start, and the hook's type
// says so. Routing keys and the balancer set in the proto (grpcrouter/v1/options.proto)
// become the defaults; hooks given in code replace them per method.
import type { DescField, DescFile, DescMessage, DescMethod } from "@bufbuild/protobuf";
import type { GeneratedFile, Plugin, Printable } from "@bufbuild/protoplugin";
import type { RouterFilePlan, RouterMethodPlan, RouterServicePlan } from "./router-proto/plan.js";
import { serviceTsNames } from "./tunnel-code/names.js";
import { tunnelCodePlugin, type TunnelCodeInput } from "./tunnel-code/plugin.js";

export const RUNTIME_MODULE = "@grpcrouter/runtime";

export function emitTypedRouter(f: GeneratedFile, input: TunnelCodeInput): void {
  const { file, plan } = input;
  const names = serviceTsNames(file);
  const rt = (name: string, typeOnly = false) => f.import(name, RUNTIME_MODULE, typeOnly);
  f.preamble(file);
  for (const sp of plan.services) {
    const service = file.services.find((s) => s.typeName === sp.service);
    if (!service) throw new Error(`phase 3: service ${sp.service} is not in ${file.name}`);
    const n = names.get(service)!;
    const byName = new Map(service.methods.map((m) => [m.name, m]));
    const methods = sp.methods.map((mp) => ({ mp, desc: byName.get(mp.name)! }));

    f.print(
      f.jsDoc(
        `The grpcrouter tunnel of ${sp.service}: its frame field numbers, as assigned in\n${sp.routerFile} (service ${sp.routerService}). Both sides of a tunnel must use the same numbers.`,
      ),
    );
    f.print(f.export("const", n.tunnel), " = ", rt("defineTunnel"), "(", f.importSchema(service), ", ", f.string(sp.routerService), ", {");
    for (const { mp } of methods) f.print("  ", propertyKey(mp.name), ": ", mp.fieldNumber, ",");
    f.print("});");
    f.print();

    f.print(
      f.jsDoc(
        `Routing-key hooks of ${sp.service}, one per method: the key a balancer such as consistent hashing\nuses to pick an instance. \`request\` is given only to methods whose client sends one message.`,
      ),
    );
    f.print(f.export("interface", n.routingKeys), " {");
    for (const { mp, desc } of methods) {
      f.print(f.jsDoc(`${mp.path} (${mp.kind.replace("_", "-")})${mp.routingKey ? `; default from the proto: ${describeKey(mp)}` : ""}`, "  "));
      if (singleRequest(desc)) {
        f.print("  ", desc.localName, "?: ", rt("RoutingKeyHook", true), "<typeof ", f.importSchema(desc.input, true), ">;");
      } else {
        f.print("  ", desc.localName, "?: (call: Omit<Parameters<", rt("RoutingKeyHook", true), '>[0], "request">) => string | undefined;');
      }
    }
    f.print("}");
    f.print();

    f.print(f.jsDoc(`Options of ${n.createRouter}: the router's own options, and the routing of ${sp.service}.`));
    f.print(f.export("interface", n.routerOptions), " extends Omit<", rt("RouterOptions", true), ', "services"> {');
    f.print("  routingKeys?: ", n.routingKeys, ";");
    f.print(`  /** Default: ${sp.balancer ? `${balancerConfig(sp)} (from the proto)` : "round robin"}. */`);
    f.print("  balancer?: ", rt("RouterServiceOptions", true), '["balancer"];');
    f.print(`  /** Calls per second (and burst) for the service and per method; default: no limit. */`);
    f.print("  rateLimit?: ", rt("RouterServiceOptions", true), '["rateLimit"];');
    f.print("}");
    f.print();

    f.print(f.jsDoc(`${sp.service} as one service of a router: \`createRouter({ services: [${n.routerService}(), ...] })\`.`));
    f.print(
      f.export("function", n.routerService),
      "(options: { routingKeys?: ",
      n.routingKeys,
      "; balancer?: ",
      rt("RouterServiceOptions", true),
      '["balancer"]; rateLimit?: ',
      rt("RouterServiceOptions", true),
      '["rateLimit"] } = {}): ',
      rt("RouterServiceOptions", true),
      "<typeof ",
      f.importSchema(service, true),
      "> {",
    );
    f.print("  const keys = options.routingKeys ?? {};");
    f.print("  const hooks: Record<string, ", rt("RoutingKeyHook", true), " | undefined> = {");
    for (const { mp, desc } of methods) {
      const fallback = defaultHook(f, mp, desc, rt);
      // A typed hook takes a narrower request than RoutingKeyHook's; the router calls it only
      // for this method, so the cast is sound.
      const given = singleRequest(desc) ? ["(keys.", desc.localName, " as ", rt("RoutingKeyHook", true), " | undefined)"] : ["keys.", desc.localName];
      f.print("    ", propertyKey(mp.name), ": ", given, fallback ? [" ?? ", ...fallback] : "", ",");
    }
    f.print("  };");
    f.print("  const routingKeys: Record<string, ", rt("RoutingKeyHook", true), "> = {};");
    f.print("  for (const [method, hook] of Object.entries(hooks)) if (hook) routingKeys[method] = hook;");
    const balancer = sp.balancer ? ` ?? ${balancerConfig(sp)}` : "";
    f.print("  const balancer: ", rt("RouterServiceOptions", true), '["balancer"] = options.balancer', balancer, ";");
    f.print(
      "  return { tunnel: ",
      n.tunnel,
      ", routingKeys, ...(balancer !== undefined ? { balancer } : {}), ...(options.rateLimit ? { rateLimit: options.rateLimit } : {}) };",
    );
    f.print("}");
    f.print();

    f.print(
      f.jsDoc(
        `A router for ${sp.service}: clients call it with ordinary gRPC for ${sp.service}; instances\n(see ${n.createBridge} in ${file.name.split("/").pop()}_bridge.ts) dial out to it and register.\n\n  const router = ${n.createRouter}();\n  await router.listen("0.0.0.0:9090");`,
      ),
    );
    f.print(f.export("function", n.createRouter), "(options: ", n.routerOptions, " = {}): ", rt("Router", true), " {");
    f.print("  const { routingKeys, balancer, rateLimit, ...rest } = options;");
    f.print(
      "  const service = ",
      n.routerService,
      "({ ...(routingKeys ? { routingKeys } : {}), ...(balancer !== undefined ? { balancer } : {}), ...(rateLimit ? { rateLimit } : {}) });",
    );
    f.print("  return ", rt("createRouter"), "({ ...rest, services: [service as ", rt("RouterServiceOptions", true), "] });");
    f.print("}");
    f.print();
  }
}

function singleRequest(m: DescMethod): boolean {
  return m.methodKind === "unary" || m.methodKind === "server_streaming";
}

/** A method name as an object key: bare when it is an identifier, quoted otherwise. */
function propertyKey(name: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(name) ? name : JSON.stringify(name);
}

function describeKey(mp: RouterMethodPlan): string {
  const k = mp.routingKey!;
  return "metadata" in k ? `metadata "${k.metadata}"` : `request field "${k.field}"`;
}

/** `BALANCER_CONSISTENT_HASH` → `{ strategy: "consistent_hash" }` (runtime/src/balancer's config). */
function balancerConfig(sp: RouterServicePlan): string {
  return `{ strategy: ${JSON.stringify(sp.balancer!.replace(/^BALANCER_/, "").toLowerCase())} }`;
}

type Rt = (name: string, typeOnly?: boolean) => ReturnType<GeneratedFile["import"]>;

/** The hook the proto's routing option implies, as printables; undefined without one. */
function defaultHook(f: GeneratedFile, mp: RouterMethodPlan, desc: DescMethod, rt: Rt): Printable[] | undefined {
  const key = mp.routingKey;
  if (!key) return undefined;
  if ("metadata" in key) {
    // The first value; binary (-bin) keys are not valid routing keys (validated in phase 1).
    return [
      `((call) => { const v = call.metadata.get(${JSON.stringify(key.metadata)})[0]; return typeof v === "string" ? v : undefined; }) as `,
      rt("RoutingKeyHook", true),
    ];
  }
  const access = fieldAccess("call.request", desc.input, key.field.split("."));
  return [
    `((call: Parameters<`,
    rt("RoutingKeyHook", true),
    "<typeof ",
    f.importSchema(desc.input, true),
    `>>[0]) => { const v = ${access}; return v === undefined ? undefined : String(v); }) as `,
    rt("RoutingKeyHook", true),
  ];
}

/** `call.request?.customer?.id`, with oneof members read through their case. */
function fieldAccess(expr: string, message: DescMessage, parts: string[]): string {
  let current: DescMessage | undefined = message;
  for (const part of parts) {
    const field: DescField | undefined = current?.fields.find((x) => x.name === part);
    if (!field) throw new Error(`phase 3: ${message.typeName} has no field path ${parts.join(".")}`);
    if (field.oneof) {
      const o = field.oneof.localName;
      expr = `(${expr}?.${o}.case === ${JSON.stringify(field.localName)} ? ${expr}.${o}.value : undefined)`;
    } else {
      expr = `${expr}?.${field.localName}`;
    }
    current = field.fieldKind === "message" ? field.message : undefined;
  }
  return expr;
}

/** The phase as a protoplugin plugin; `planFor` gives the router plan of a file (undefined: no services). */
export function phase3Plugin(planFor: (file: DescFile) => RouterFilePlan | undefined): Plugin {
  return tunnelCodePlugin({ name: "protoc-gen-grpcrouter-router", phase: 3, suffix: "_router.ts", emit: emitTypedRouter }, planFor);
}
