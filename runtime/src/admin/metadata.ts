// Turning gRPC metadata into the admin protocol's string maps, with secrets redacted.
// A watcher (a browser tab, a teammate's VS Code) must never see a bearer token or a
// session cookie just because it can see the traffic.

/** What the router may hand in as metadata: grpc-js `Metadata`, or a plain record/entries. */
export type MetadataInput =
  | { toJSON(): Record<string, ReadonlyArray<string | Uint8Array>> }
  | Readonly<Record<string, string | Uint8Array | ReadonlyArray<string | Uint8Array>>>
  | Iterable<readonly [string, string | Uint8Array]>;

/** Keys redacted unless the hub is configured otherwise (matched case-insensitively). */
export const DEFAULT_REDACTED_KEYS: readonly string[] = [
  "authorization",
  "proxy-authorization",
  "cookie",
  "set-cookie",
  "x-api-key",
  "api-key",
  "x-auth-token",
  "x-csrf-token",
  "x-amz-security-token",
];

/**
 * Keys that look like credentials, redacted by default too: any key containing token,
 * secret, password, passwd, apikey/api-key/api_key, auth, cookie, session, credential,
 * signature, private, jwt or bearer ("x-goog-api-key", "x-session-id", "grpc-auth-bin").
 */
export const DEFAULT_REDACTED_PATTERN = /token|secret|passw(or)?d|api[-_]?key|auth|cookie|session|credential|signature|private|jwt|bearer/i;

/** What the hub redacts by default: the keys and the pattern. A hub's `redact` option replaces it. */
export const DEFAULT_REDACTED: readonly (string | RegExp)[] = [...DEFAULT_REDACTED_KEYS, DEFAULT_REDACTED_PATTERN];

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
  private readonly patterns: RegExp[];
  private readonly cache = new Map<string, boolean>();
  constructor(rules: readonly (string | RegExp)[] = DEFAULT_REDACTED) {
    this.keys = new Set(rules.filter((k): k is string => typeof k === "string").map((k) => k.toLowerCase()));
    this.patterns = rules.filter((k): k is RegExp => k instanceof RegExp);
  }

  isRedacted(key: string): boolean {
    const k = key.toLowerCase();
    let r = this.cache.get(k);
    if (r === undefined) {
      r = this.keys.has(k) || this.patterns.some((p) => p.test(k));
      // Keys come from callers: bound what is remembered.
      if (this.cache.size < 10_000) this.cache.set(k, r);
    }
    return r;
  }

  /** Repeated keys are joined with ", " (as HTTP does); redacted keys keep their name. */
  toMap(input: MetadataInput | undefined): Record<string, string> {
    const map: Record<string, string> = {};
    if (!input) return map;
    for (const [rawKey, value] of entriesOf(input)) {
      const key = rawKey.toLowerCase();
      const text = this.isRedacted(key) ? REDACTED : valueText(value);
      map[key] = key in map && map[key] !== REDACTED ? `${map[key]}, ${text}` : text;
    }
    return map;
  }
}
