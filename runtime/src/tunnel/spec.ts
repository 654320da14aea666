// What both sides need to speak one service's tunnel: the original service and the frame
// field number of each method (from the generated router proto).
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { FIRST_METHOD_FIELD } from "./frames.js";

export interface TunnelSpec<S extends DescService = DescService> {
  /** The ORIGINAL service, e.g. Echo from echo_pb.ts. */
  readonly service: S;
  /** e.g. "demo.v1.EchoRouter"; the Register path is `/${routerService}/Register`. */
  readonly routerService: string;
  /** Method proto name ("Say") → frame field number (>= 16). */
  readonly fields: Readonly<Record<string, number>>;
}

/** Declares a tunnel. Throws for a method without a field or a field below 16 / used twice. */
export function defineTunnel<S extends DescService>(service: S, routerService: string, fields: Record<string, number>): TunnelSpec<S> {
  const seen = new Map<number, string>();
  for (const method of service.methods) {
    const field = fields[method.name];
    if (field === undefined) {
      throw new Error(`tunnel ${routerService}: method ${service.typeName}.${method.name} has no frame field number (regenerate the router proto)`);
    }
    if (!Number.isInteger(field) || field < FIRST_METHOD_FIELD || field > 536_870_911) {
      throw new Error(`tunnel ${routerService}: method ${method.name} has frame field ${field}; method fields are integers from ${FIRST_METHOD_FIELD}`);
    }
    const other = seen.get(field);
    if (other !== undefined) throw new Error(`tunnel ${routerService}: methods ${other} and ${method.name} share frame field ${field}`);
    seen.set(field, method.name);
  }
  return Object.freeze({ service, routerService, fields: Object.freeze({ ...fields }) });
}

/** One method of a tunnel, resolved once. */
export interface TunnelMethod {
  readonly method: DescMethod;
  /** "/demo.v1.Echo/Say" */
  readonly path: string;
  readonly field: number;
  readonly kind: DescMethod["methodKind"];
  /** The client sends exactly one message (unary, server streaming). */
  readonly singleRequest: boolean;
  /** The server sends exactly one message (unary, client streaming). */
  readonly singleResponse: boolean;
}

export interface TunnelTable {
  readonly spec: TunnelSpec;
  readonly registerPath: string;
  readonly byPath: ReadonlyMap<string, TunnelMethod>;
  readonly byField: ReadonlyMap<number, TunnelMethod>;
}

const tables = new WeakMap<TunnelSpec, TunnelTable>();

export function tunnelTable(spec: TunnelSpec): TunnelTable {
  let table = tables.get(spec);
  if (table) return table;
  const byPath = new Map<string, TunnelMethod>();
  const byField = new Map<number, TunnelMethod>();
  for (const method of spec.service.methods) {
    const field = spec.fields[method.name];
    if (field === undefined) throw new Error(`tunnel ${spec.routerService}: method ${method.name} has no frame field number`);
    const kind = method.methodKind;
    const m: TunnelMethod = {
      method,
      path: `/${spec.service.typeName}/${method.name}`,
      field,
      kind,
      singleRequest: kind === "unary" || kind === "server_streaming",
      singleResponse: kind === "unary" || kind === "client_streaming",
    };
    byPath.set(m.path, m);
    byField.set(field, m);
  }
  table = { spec, registerPath: `/${spec.routerService}/Register`, byPath, byField };
  tables.set(spec, table);
  return table;
}
