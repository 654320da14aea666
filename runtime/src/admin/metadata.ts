// Turning gRPC metadata into the admin protocol's string maps, with secrets redacted.
// A watcher (a browser tab, a teammate's VS Code) must never see a bearer token or a
// session cookie just because it can see the traffic.

/** What the router may hand in as metadata: grpc-js `Metadata`, or a plain record/entries. */
export type MetadataInput =
  | { toJSON(): Record<string, ReadonlyArray<string | Uint8Array>> }
  | Readonly<Record<string, string | Uint8Array | ReadonlyArray<string | Uint8Array>>>
  | Iterable<readonly [string, string | Uint8Array]>;

/** Keys redacted unless the hub is configured otherwise (matched case-insensitively). */
export const DEFAULT_REDACTED_KEYS: readonly string[] = ["authorization", "proxy-authorization", "cookie", "set-cookie"];

/** What replaces a redacted value. */
export const REDACTED = "[redacted]";

function valueText(value: string | Uint8Array): string {
  if (typeof value === "string") return value;
  // Binary (-bin) values travel as base64, the same text form grpcurl's -H accepts.
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64");
}

function entriesOf(input: MetadataInput): Array<[string, string | Uint8Array]> {
  const out: Array<[string, string | Uint8Array]> = [];
  const push = (k: string, v: string | Uint8Array | ReadonlyArray<string | Uint8Array>) => {
    if (typeof v === "string" || v instanceof Uint8Array) out.push([k, v]);
    else for (const one of v) out.push([k, one]);
  };
  if (typeof (input as { getMap?: unknown }).getMap === "function" && typeof (input as { toJSON?: unknown }).toJSON === "function") {
    // grpc-js Metadata: toJSON() keeps every value of a repeated key.
    for (const [k, v] of Object.entries((input as { toJSON(): Record<string, ReadonlyArray<string | Uint8Array>> }).toJSON())) push(k, v);
  } else if (typeof (input as Iterable<unknown>)[Symbol.iterator] === "function") {
    for (const [k, v] of input as Iterable<readonly [string, string | Uint8Array]>) push(k, v);
  } else {
    for (const [k, v] of Object.entries(input as Record<string, string | Uint8Array | ReadonlyArray<string | Uint8Array>>)) push(k, v);
  }
  return out;
}

/** A redactor built once per hub: lower-cased key set, applied to every metadata map. */
export class MetadataRedactor {
  private readonly keys: Set<string>;
  constructor(keys: readonly string[] = DEFAULT_REDACTED_KEYS) {
    this.keys = new Set(keys.map((k) => k.toLowerCase()));
  }

  isRedacted(key: string): boolean {
    return this.keys.has(key.toLowerCase());
  }

  /** Repeated keys are joined with ", " (as HTTP does); redacted keys keep their name. */
  toMap(input: MetadataInput | undefined): Record<string, string> {
    const map: Record<string, string> = {};
    if (!input) return map;
    for (const [rawKey, value] of entriesOf(input)) {
      const key = rawKey.toLowerCase();
      const text = this.keys.has(key) ? REDACTED : valueText(value);
      map[key] = key in map && map[key] !== REDACTED ? `${map[key]}, ${text}` : text;
    }
    return map;
  }
}
