// Decoding message bodies to proto3 JSON for watchers that asked for them. The router never
// decodes payloads on its hot path (see the tunnel design); this happens only when a watcher
// wants bodies, once per message, and is cut at a configured size.
import { fromBinary, toJsonString, type DescMessage, type Registry } from "@bufbuild/protobuf";

/** Resolves a method path ("/pkg.Svc/Method") to its request and response schemas. */
export type DescribeMethod = (method: string) => { input: DescMessage; output: DescMessage } | undefined;

export interface DecodedBody {
  json: string;
  truncated: boolean;
  /** Why there is no json (empty when there is). */
  error: string;
}

/** A `DescribeMethod` over a protobuf-es registry (e.g. `createFileRegistry(...)`). */
export function describeFromRegistry(registry: Registry): DescribeMethod {
  return (method) => {
    const m = /^\/?([^/]+)\/([^/]+)$/.exec(method);
    if (!m) return undefined;
    const service = registry.getService(m[1]!);
    const desc = service?.methods.find((x) => x.name === m[2]);
    return desc ? { input: desc.input, output: desc.output } : undefined;
  };
}

export class BodyDecoder {
  private readonly schemas = new Map<string, { input: DescMessage; output: DescMessage } | undefined>();

  constructor(
    private readonly describe: DescribeMethod | undefined,
    private readonly maxJsonChars: number,
    private readonly registry: Registry | undefined,
  ) {}

  /** Forgets resolved schemas (the protos were reloaded; `describe` now answers differently). */
  clear(): void {
    this.schemas.clear();
  }

  get canDecode(): boolean {
    return this.describe !== undefined;
  }

  /** The method's schemas, resolved once (undefined: no resolver, or it does not know the method). */
  schemasOf(method: string): { input: DescMessage; output: DescMessage } | undefined {
    if (!this.describe) return undefined;
    let schemas = this.schemas.get(method);
    if (!this.schemas.has(method)) {
      try {
        schemas = this.describe(method);
      } catch (e) {
        schemas = undefined;
        void e;
      }
      this.schemas.set(method, schemas);
    }
    return schemas;
  }

  decode(method: string, direction: "request" | "response", payload: Uint8Array | undefined): DecodedBody {
    if (!this.describe) return { json: "", truncated: false, error: "no schema resolver configured" };
    if (payload === undefined) return { json: "", truncated: false, error: "body not captured" };
    const schemas = this.schemasOf(method);
    if (!schemas) return { json: "", truncated: false, error: `no schema for ${method}` };
    const desc = direction === "request" ? schemas.input : schemas.output;
    let json: string;
    try {
      json = toJsonString(desc, fromBinary(desc, payload), { registry: this.registry });
    } catch (e) {
      return { json: "", truncated: false, error: `cannot decode ${desc.typeName}: ${e instanceof Error ? e.message : String(e)}` };
    }
    if (json.length > this.maxJsonChars) return { json: json.slice(0, this.maxJsonChars), truncated: true, error: "" };
    return { json, truncated: false, error: "" };
  }
}
