// Phase 1's decisions, before any text is printed: per routed service, the names of the
// router service and frame messages, and the method → field number table. The runtime and
// the language server (hovers) read the same table.
import { protoCamelCase } from "@bufbuild/protobuf/reflect";
import { type DescFile, type DescMethod, type DescService, type FileRegistry } from "@bufbuild/protobuf";
import { getComments } from "@bufbuild/protoplugin";
import type { Diagnostic } from "../../diagnostics.js";
import { generalDiagnostic } from "../../diagnostics.js";
import { TUNNEL_PROTO } from "../../grpcrouter-protos.js";
import { RoutingOptions, spanToRange, type RoutingKey } from "./options.js";
import { parsePreviousRouterProto, type PreviousService, type RouterNames } from "./previous.js";

export type MethodKind = "unary" | "server_streaming" | "client_streaming" | "bidi_streaming";

export interface RouterMethodPlan {
  /** As in the .proto, e.g. "Say". */
  name: string;
  /** The gRPC path clients call, e.g. "/demo.v1.Echo/Say". */
  path: string;
  kind: MethodKind;
  /** The oneof field number of this method in both frames. */
  fieldNumber: number;
  /** The oneof field name in both frames, e.g. "say". */
  fieldName: string;
  /** Fully-qualified request and response message names. */
  requestType: string;
  responseType: string;
  routingKey?: RoutingKey;
  /** Leading comment of the rpc, without comment markers. */
  comment: string;
}

export interface RouterServicePlan {
  /** Fully-qualified name of the routed service, e.g. "demo.v1.Echo". */
  service: string;
  /** The .proto file declaring it (import path). */
  file: string;
  routerFile: string;
  package: string;
  names: RouterNames;
  /** Fully-qualified name of the router service: its Register path is `/${routerService}/Register`. */
  routerService: string;
  methods: RouterMethodPlan[];
  /** Numbers once used by removed methods; never reused. */
  reserved: { number: number; method: string }[];
  reservedNames: string[];
  balancer?: string;
  comment: string;
}

export interface RouterFilePlan {
  file: string;
  routerFile: string;
  package: string;
  services: RouterServicePlan[];
  /** Files the router proto imports (tunnel.proto and the files of request/response types). */
  imports: string[];
}

export interface RouterPlan {
  files: RouterFilePlan[];
  /** Every routed service by fully-qualified name. */
  services: Map<string, RouterServicePlan>;
  diagnostics: Diagnostic[];
}

/** Previous router protos by router file path ("demo/v1/echo_router.proto"), or a lookup. */
export type PreviousRouterProtos = ReadonlyMap<string, string> | ((routerFile: string) => string | undefined);

export interface RouterPlanInput {
  registry: FileRegistry;
  /** Import paths of the files to plan for (the module's own files). */
  files: readonly string[];
  previous?: PreviousRouterProtos;
  /** Maps import paths to the paths diagnostics name (relative to the module root). */
  sourcePath?: (importPath: string) => string;
}

/** Control cases of the frames' oneof, fixed by tunnel.proto; method fields never take these names. */
export const ROUTER_CONTROL_FIELDS: readonly [number, string, string][] = [
  [2, "Welcome", "welcome"],
  [3, "Open", "open"],
  [4, "HalfClose", "half_close"],
  [5, "Cancel", "cancel"],
  [6, "WindowUpdate", "window_update"],
  [7, "Ping", "ping"],
  [8, "Pong", "pong"],
  [9, "Drain", "drain"],
];
export const INSTANCE_CONTROL_FIELDS: readonly [number, string, string][] = [
  [2, "Hello", "hello"],
  [3, "Headers", "headers"],
  [4, "Trailers", "trailers"],
  [5, "WindowUpdate", "window_update"],
  [6, "Ping", "ping"],
  [7, "Pong", "pong"],
  [8, "Drain", "drain"],
  [9, "HealthReport", "health"],
];
export const FIRST_METHOD_FIELD = 16;
const RESERVED_BY_PROTOBUF = [19000, 19999] as const;
const MAX_FIELD_NUMBER = 536870911;

export function routerFileName(file: string): string {
  return file.replace(/\.proto$/, "") + "_router.proto";
}

export function routerPlan(input: RouterPlanInput): RouterPlan {
  const { registry } = input;
  const sourcePath = input.sourcePath ?? ((p: string) => p);
  const previousText =
    typeof input.previous === "function" ? input.previous : (f: string) => (input.previous as ReadonlyMap<string, string> | undefined)?.get(f);
  const diagnostics: Diagnostic[] = [];
  const options = new RoutingOptions(registry, sourcePath);
  const moduleFiles = new Set(input.files);
  const taken = takenNames(registry);
  const plan: RouterPlan = { files: [], services: new Map(), diagnostics };

  for (const name of [...input.files].sort()) {
    const file = registry.getFile(name);
    if (!file || file.services.length === 0) continue;
    const routerFile = routerFileName(name);
    if (registry.getFile(routerFile) && moduleFiles.has(routerFile)) {
      diagnostics.push({
        ...generalDiagnostic(`cannot generate ${routerFile}: the module has its own file of that name; rename it`, "grpcrouter"),
        file: sourcePath(routerFile),
      });
      continue;
    }
    const text = previousText(routerFile);
    const previous = text === undefined ? new Map<string, PreviousService>() : parsePreviousRouterProto(text);
    const filePlan: RouterFilePlan = { file: name, routerFile, package: file.proto.package, services: [], imports: [TUNNEL_PROTO] };
    for (const service of file.services) {
      const sp = planService(service, routerFile, previous.get(service.typeName), taken, options, diagnostics, sourcePath);
      filePlan.services.push(sp);
      plan.services.set(sp.service, sp);
      for (const m of service.methods) {
        for (const t of [m.input, m.output]) if (!filePlan.imports.includes(t.file.proto.name)) filePlan.imports.push(t.file.proto.name);
      }
    }
    filePlan.imports.sort();
    plan.files.push(filePlan);
  }
  return plan;
}

function planService(
  service: DescService,
  routerFile: string,
  previous: PreviousService | undefined,
  taken: Set<string>,
  options: RoutingOptions,
  diagnostics: Diagnostic[],
  sourcePath: (p: string) => string,
): RouterServicePlan {
  const pkg = service.file.proto.package;
  const names = chooseNames(service.name, pkg, previous?.names, taken);
  const routing = options.service(service);

  // Field names: unique among themselves, the control cases, `call`, the oneof `frame`, and
  // reserved names — by name and by JSON name (protoc rejects `get` beside `get_` in proto3).
  const usedNames = new Set<string>(["call", "frame"]);
  const usedJson = new Set<string>();
  for (const [, , n] of [...ROUTER_CONTROL_FIELDS, ...INSTANCE_CONTROL_FIELDS]) usedNames.add(n);
  const reservedNames = new Set(previous?.reservedNames ?? []);
  for (const n of [...usedNames, ...reservedNames]) usedJson.add(protoCamelCase(n).toLowerCase());
  const claim = (n: string) => {
    usedNames.add(n);
    usedJson.add(protoCamelCase(n).toLowerCase());
  };
  const free = (n: string) => !usedNames.has(n) && !reservedNames.has(n) && !usedJson.has(protoCamelCase(n).toLowerCase());

  const reserved = [...(previous?.reserved ?? [])];
  const usedNumbers = new Set<number>(reserved.map((r) => r.number));
  const current = new Set(service.methods.map((m) => m.name));
  // Methods that disappeared: their numbers and field names are reserved forever.
  for (const [method, prev] of previous?.methods ?? []) {
    if (current.has(method)) continue;
    reserved.push({ number: prev.number, method });
    usedNumbers.add(prev.number);
    reservedNames.add(prev.fieldName);
    usedJson.add(protoCamelCase(prev.fieldName).toLowerCase());
  }
  // Keep every surviving method's number and (where still free) field name.
  const kept = new Map<string, { number: number; fieldName?: string }>();
  for (const m of service.methods) {
    const prev = previous?.methods.get(m.name);
    if (!prev) continue;
    usedNumbers.add(prev.number);
    kept.set(m.name, { number: prev.number });
  }
  for (const m of service.methods) {
    const k = kept.get(m.name);
    const prev = previous?.methods.get(m.name);
    if (k && prev && free(prev.fieldName)) {
      k.fieldName = prev.fieldName;
      claim(prev.fieldName);
    }
  }
  let next = Math.max(FIRST_METHOD_FIELD, ...[...usedNumbers].map((n) => n + 1));
  const methods: RouterMethodPlan[] = [];
  for (const m of service.methods) {
    const k = kept.get(m.name);
    let number = k?.number;
    if (number === undefined) {
      if (next >= RESERVED_BY_PROTOBUF[0] && next <= RESERVED_BY_PROTOBUF[1]) next = RESERVED_BY_PROTOBUF[1] + 1;
      number = next++;
      if (number > MAX_FIELD_NUMBER) {
        diagnostics.push({
          ...methodRange(m, sourcePath),
          severity: "error",
          message: `no field number left for ${m.parent.typeName}.${m.name}`,
          source: "grpcrouter",
        });
      }
    }
    let fieldName = k?.fieldName;
    if (fieldName === undefined) {
      const base = snakeCase(m.name);
      fieldName = base;
      for (let i = 2; !free(fieldName); i++) fieldName = `${base.replace(/_+$/, "")}_${i}`;
      claim(fieldName);
    }
    const routingKey = options.validate(m, routing, diagnostics);
    methods.push({
      name: m.name,
      path: `/${service.typeName}/${m.name}`,
      kind: m.methodKind,
      fieldNumber: number,
      fieldName,
      requestType: m.input.typeName,
      responseType: m.output.typeName,
      ...(routingKey ? { routingKey } : {}),
      comment: cleanComment(getComments(m).leading),
    });
  }
  reserved.sort((a, b) => a.number - b.number);
  const plan: RouterServicePlan = {
    service: service.typeName,
    file: service.file.proto.name,
    routerFile,
    package: pkg,
    names,
    routerService: pkg ? `${pkg}.${names.service}` : names.service,
    methods,
    reserved,
    reservedNames: [...reservedNames].sort(),
    comment: cleanComment(getComments(service).leading),
  };
  if (routing.balancer) plan.balancer = routing.balancer;
  return plan;
}

/** Names of the router service and messages: the previous ones if still free, else the first free suffix. */
function chooseNames(service: string, pkg: string, previous: RouterNames | undefined, taken: Set<string>): RouterNames {
  const fq = (n: string) => (pkg ? `${pkg}.${n}` : n);
  const allFree = (n: RouterNames) => Object.values(n).every((v) => v !== "" && !taken.has(fq(v)));
  let names: RouterNames | undefined = previous && allFree(previous) ? previous : undefined;
  for (let i = 1; !names; i++) {
    const s = i === 1 ? "" : String(i);
    const candidate: RouterNames = {
      service: `${service}Router${s}`,
      instanceMessage: `${service}InstanceMessage${s}`,
      routerMessage: `${service}RouterMessage${s}`,
      instanceFrame: `${service}InstanceFrame${s}`,
      routerFrame: `${service}RouterFrame${s}`,
    };
    if (allFree(candidate)) names = candidate;
  }
  for (const v of Object.values(names)) taken.add(fq(v));
  return names;
}

/** Every name a top-level router declaration could clash with: types, services, enum values, extensions, packages. */
function takenNames(registry: FileRegistry): Set<string> {
  const taken = new Set<string>();
  for (const file of registry.files) {
    const parts = file.proto.package ? file.proto.package.split(".") : [];
    for (let i = 1; i <= parts.length; i++) taken.add(parts.slice(0, i).join("."));
    addFileNames(file, taken);
  }
  return taken;
}

function addFileNames(file: DescFile, taken: Set<string>): void {
  const pkg = file.proto.package ? file.proto.package + "." : "";
  for (const m of file.messages) taken.add(m.typeName);
  for (const e of file.enums) {
    taken.add(e.typeName);
    for (const v of e.values) taken.add(pkg + v.name);
  }
  for (const s of file.services) taken.add(s.typeName);
  for (const x of file.extensions) taken.add(x.typeName);
}

/** "GetUser" → "get_user", "HTTPGet" → "http_get", "get_" → "get_". */
export function snakeCase(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .replace(/([A-Z]+)([A-Z][a-z])/g, "$1_$2")
    .toLowerCase();
}

function cleanComment(c: string | undefined): string {
  if (!c) return "";
  return c
    .split("\n")
    .map((l) => l.replace(/^ /, "").trimEnd())
    .join("\n")
    .trim();
}

function methodRange(m: DescMethod, sourcePath: (p: string) => string) {
  const si = m.parent.file.services.indexOf(m.parent);
  const mi = m.parent.methods.indexOf(m);
  const loc = m.parent.file.proto.sourceCodeInfo?.location.find(
    (l) => l.path.length === 4 && l.path[0] === 6 && l.path[1] === si && l.path[2] === 2 && l.path[3] === mi,
  );
  return spanToRange(sourcePath(m.parent.file.proto.name), loc?.span ?? [0, 0, 0]);
}
