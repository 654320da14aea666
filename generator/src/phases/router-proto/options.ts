// Reads and validates the routing options proto authors set with grpcrouter/v1/options.proto:
//   option (grpcrouter.v1.service) = { routing_key: {...} balancer: ... };
//   option (grpcrouter.v1.method)  = { routing_key: {...} };
// A bad option is an error diagnostic at the option's line.
import {
  getExtension,
  hasExtension,
  toJson,
  type DescExtension,
  type DescMessage,
  type DescMethod,
  type DescService,
  type FileRegistry,
  type JsonObject,
} from "@bufbuild/protobuf";
import type { Diagnostic } from "../../diagnostics.js";

export type RoutingKey = { metadata: string } | { field: string };

export interface ServiceRouting {
  routingKey?: RoutingKey;
  /** e.g. "BALANCER_CONSISTENT_HASH"; absent when unset. */
  balancer?: string;
}

const SERVICE_PATH = 6; // FileDescriptorProto.service
const METHOD_PATH = 2; // ServiceDescriptorProto.method
const SERVICE_OPTIONS = 3; // ServiceDescriptorProto.options
const METHOD_OPTIONS = 4; // MethodDescriptorProto.options
const EXTENSION_NUMBER = 51730;

/** Valid gRPC custom metadata key: lower case token, not reserved by gRPC or HTTP/2. */
const metadataKey = /^[0-9a-z_.-]+$/;

export class RoutingOptions {
  private readonly serviceExt: DescExtension | undefined;
  private readonly methodExt: DescExtension | undefined;

  constructor(
    registry: FileRegistry,
    private readonly sourcePath: (importPath: string) => string,
  ) {
    this.serviceExt = registry.getExtension("grpcrouter.v1.service");
    this.methodExt = registry.getExtension("grpcrouter.v1.method");
  }

  service(desc: DescService): ServiceRouting {
    const json = this.read(this.serviceExt, desc.proto.options);
    if (!json) return {};
    const out: ServiceRouting = {};
    const key = toRoutingKey(json["routingKey"]);
    if (key) out.routingKey = key;
    if (typeof json["balancer"] === "string" && json["balancer"] !== "BALANCER_UNSPECIFIED") out.balancer = json["balancer"];
    return out;
  }

  methodKey(desc: DescMethod): RoutingKey | undefined {
    const json = this.read(this.methodExt, desc.proto.options);
    return json ? toRoutingKey(json["routingKey"]) : undefined;
  }

  /**
   * The routing key that applies to `method` (its own, else its service's), or diagnostics
   * when it cannot apply.
   */
  validate(method: DescMethod, service: ServiceRouting, diagnostics: Diagnostic[]): RoutingKey | undefined {
    const own = this.methodKey(method);
    const key = own ?? service.routingKey;
    if (!key) return undefined;
    const where = own ? this.methodOptionSpan(method) : this.serviceOptionSpan(method.parent);
    const origin = own ? "" : ` (from the (grpcrouter.v1.service) option of ${method.parent.typeName})`;
    const error = (message: string) => diagnostics.push({ ...where, severity: "error", message, source: "grpcrouter" });
    if ("metadata" in key) {
      if (!metadataKey.test(key.metadata) || key.metadata.startsWith("grpc-")) {
        error(
          `routing key metadata "${key.metadata}" of ${methodName(method)}${origin} is not a valid gRPC metadata key: use lower-case letters, digits, "-", "_", "." and no "grpc-" prefix`,
        );
        return undefined;
      }
      return key;
    }
    if (method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming") {
      error(
        `routing key field "${key.field}"${origin} cannot apply to ${methodName(method)}: it is ${method.methodKind.replace("_", "-")}, so the router has no single request message to read it from; give the method a metadata routing key`,
      );
      return undefined;
    }
    const problem = checkFieldPath(method.input, key.field);
    if (problem) {
      error(`routing key field "${key.field}" of ${methodName(method)}${origin}: ${problem}`);
      return undefined;
    }
    return key;
  }

  private read(ext: DescExtension | undefined, options: DescService["proto"]["options"] | DescMethod["proto"]["options"]): JsonObject | undefined {
    if (!ext || !options || !hasExtension(options, ext)) return undefined;
    const value = getExtension(options, ext);
    if (ext.fieldKind !== "message") return undefined;
    return toJson(ext.message, value as never) as JsonObject;
  }

  private serviceOptionSpan(desc: DescService) {
    const si = desc.file.services.indexOf(desc);
    return this.span(desc.file.proto, [SERVICE_PATH, si, SERVICE_OPTIONS, EXTENSION_NUMBER], [SERVICE_PATH, si]);
  }

  private methodOptionSpan(desc: DescMethod) {
    const si = desc.parent.file.services.indexOf(desc.parent);
    const mi = desc.parent.methods.indexOf(desc);
    return this.span(desc.parent.file.proto, [SERVICE_PATH, si, METHOD_PATH, mi, METHOD_OPTIONS, EXTENSION_NUMBER], [SERVICE_PATH, si, METHOD_PATH, mi]);
  }

  /** The source span of the first path that has a location (the option, else its owner). */
  private span(file: DescService["file"]["proto"], ...paths: number[][]) {
    const locations = file.sourceCodeInfo?.location ?? [];
    for (const p of paths) {
      // The option's own location may be more specific (…, 51730, 1) — take the shortest match.
      const loc = locations.find((l) => l.path.length >= p.length && p.every((v, i) => l.path[i] === v));
      if (loc) return spanToRange(this.sourcePath(file.name), loc.span);
    }
    return spanToRange(this.sourcePath(file.name), [0, 0, 0]);
  }
}

export function spanToRange(file: string, span: readonly number[]) {
  const [sl = 0, sc = 0, a = 0, b] = span;
  const [el, ec] = b === undefined ? [sl, a] : [a, b];
  return { file, line: sl + 1, column: sc + 1, endLine: el + 1, endColumn: ec + 1 };
}

function methodName(m: DescMethod): string {
  return `${m.parent.typeName}.${m.name}`;
}

function toRoutingKey(v: unknown): RoutingKey | undefined {
  if (!v || typeof v !== "object") return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o["metadata"] === "string") return { metadata: o["metadata"] };
  if (typeof o["field"] === "string") return { field: o["field"] };
  return undefined;
}

/** Why `path` is not a dotted path of singular fields ending in a scalar, or undefined if it is. */
export function checkFieldPath(message: DescMessage, path: string): string | undefined {
  const parts = path.split(".");
  let current: DescMessage = message;
  for (let i = 0; i < parts.length; i++) {
    const name = parts[i]!;
    const field = current.fields.find((f) => f.name === name);
    const sofar = parts.slice(0, i + 1).join(".");
    if (!field) return `${current.typeName} has no field "${name}"`;
    if (field.fieldKind === "list") return `"${sofar}" is a repeated field; a routing key must be a single value`;
    if (field.fieldKind === "map") return `"${sofar}" is a map field; a routing key must be a single value`;
    const last = i === parts.length - 1;
    if (last) {
      if (field.fieldKind === "message") return `"${sofar}" is a message (${field.message.typeName}); a routing key must be a scalar or enum field`;
      return undefined;
    }
    if (field.fieldKind !== "message") return `"${sofar}" is not a message, so "${parts.slice(i + 1).join(".")}" cannot be read from it`;
    current = field.message;
  }
  return undefined;
}
