// CORS for the router's browser protocols (gRPC-Web, Connect): which origins may call,
// which response headers a page may read, how long a browser may cache a preflight.
// Preflights (OPTIONS) are answered here and never reach an instance; a request from an
// origin that is not allowed gets no CORS headers at all, so the browser refuses it.

export interface CorsOptions {
  /**
   * Origins allowed to call ("https://app.example.com"); "*" allows every origin. An entry
   * may hold one "*" for a subdomain label ("https://*.example.com"). Default: none (no
   * page of another origin may call; same-origin pages and curl are not affected).
   */
  allowedOrigins?: string[];
  /** Response headers a page may read, besides the protocol's own (grpc-status, grpc-message, …). */
  exposedHeaders?: string[];
  /** Request headers a page may send, besides the protocol's own. Default: any the preflight asks for. */
  allowedHeaders?: string[];
  /** Seconds a browser may cache a preflight's answer. Default 7200. */
  maxAgeSeconds?: number;
  /** Send Access-Control-Allow-Credentials (cookies, HTTP auth). Default false. */
  allowCredentials?: boolean;
}

/** Headers gRPC-Web and Connect clients read from responses. */
const PROTOCOL_EXPOSED = ["grpc-status", "grpc-message", "grpc-status-details-bin", "grpc-encoding", "connect-content-encoding"];
/** Headers gRPC-Web and Connect clients send. */
const PROTOCOL_ALLOWED = [
  "content-type",
  "x-grpc-web",
  "x-user-agent",
  "grpc-timeout",
  "connect-protocol-version",
  "connect-timeout-ms",
  "connect-content-encoding",
  "connect-accept-encoding",
];

/** A CORS configuration, checked once. */
export class Cors {
  private readonly any: boolean;
  private readonly exact: Set<string>;
  private readonly patterns: RegExp[];
  private readonly exposed: string;
  private readonly allowedHeaders: string | undefined;
  private readonly maxAge: string;
  private readonly credentials: boolean;

  constructor(options: CorsOptions = {}) {
    const origins = options.allowedOrigins ?? [];
    this.any = origins.includes("*");
    this.exact = new Set(origins.filter((o) => !o.includes("*")).map((o) => o.toLowerCase()));
    this.patterns = origins
      .filter((o) => o !== "*" && o.includes("*"))
      .map((o) => new RegExp(`^${o.toLowerCase().split("*").map(escapeRegExp).join("[a-z0-9-]+")}$`));
    this.exposed = [...new Set([...PROTOCOL_EXPOSED, ...(options.exposedHeaders ?? []).map((h) => h.toLowerCase())])].join(", ");
    this.allowedHeaders = options.allowedHeaders
      ? [...new Set([...PROTOCOL_ALLOWED, ...options.allowedHeaders.map((h) => h.toLowerCase())])].join(", ")
      : undefined;
    this.maxAge = String(options.maxAgeSeconds ?? 7200);
    this.credentials = options.allowCredentials ?? false;
  }

  allows(origin: string): boolean {
    if (this.any) return true;
    const o = origin.toLowerCase();
    return this.exact.has(o) || this.patterns.some((p) => p.test(o));
  }

  /** Headers for the response to an actual request from `origin` (empty when not allowed). */
  responseHeaders(origin: string | undefined): Record<string, string> {
    if (origin === undefined || !this.allows(origin)) return {};
    const h: Record<string, string> = {
      "access-control-allow-origin": this.any && !this.credentials ? "*" : origin,
      "access-control-expose-headers": this.exposed,
      vary: "Origin",
    };
    if (this.credentials) h["access-control-allow-credentials"] = "true";
    return h;
  }

  /** The answer to a preflight: status and headers (204 with CORS headers, or 403 without). */
  preflight(origin: string | undefined, requestHeaders: string | undefined): { status: number; headers: Record<string, string> } {
    if (origin === undefined || !this.allows(origin)) return { status: 403, headers: { vary: "Origin" } };
    const h: Record<string, string> = {
      ...this.responseHeaders(origin),
      "access-control-allow-methods": "POST, GET",
      "access-control-max-age": this.maxAge,
      vary: "Origin, Access-Control-Request-Headers",
    };
    const asked = this.allowedHeaders ?? sanitizeHeaderList(requestHeaders);
    if (asked) h["access-control-allow-headers"] = asked;
    return { status: 204, headers: h };
  }
}

/** Validates CORS settings (from a config file): errors name the field under `path`. */
export function parseCorsOptions(value: unknown, fail: (path: string, problem: string) => never, path = "cors"): CorsOptions {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    fail(path, `expected an object {"allowedOrigins": [...], "exposedHeaders": [...], "maxAgeSeconds": N}`);
  const v = value as Record<string, unknown>;
  const allowed = ["allowedOrigins", "exposedHeaders", "allowedHeaders", "maxAgeSeconds", "allowCredentials"];
  for (const k of Object.keys(v)) if (!allowed.includes(k)) fail(`${path}.${k}`, `unknown field (allowed here: ${allowed.join(", ")})`);
  const out: CorsOptions = {};
  const strings = (k: "allowedOrigins" | "exposedHeaders" | "allowedHeaders", check: (s: string) => string | undefined) => {
    const x = v[k];
    if (x === undefined) return;
    if (!Array.isArray(x)) fail(`${path}.${k}`, "expected an array of strings");
    x.forEach((s, i) => {
      if (typeof s !== "string") fail(`${path}.${k}[${i}]`, "expected a string");
      const problem = check(s);
      if (problem) fail(`${path}.${k}[${i}]`, problem);
    });
    out[k] = x as string[];
  };
  strings("allowedOrigins", (s) =>
    s === "*" || /^[a-z][a-z0-9+.-]*:\/\/[^/\s]+$/i.test(s)
      ? undefined
      : `${JSON.stringify(s)} is not an origin ("https://app.example.com", without a path) or "*"`,
  );
  const token = (s: string) => (/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(s) ? undefined : `${JSON.stringify(s)} is not a header name`);
  strings("exposedHeaders", token);
  strings("allowedHeaders", token);
  if (v.maxAgeSeconds !== undefined) {
    if (typeof v.maxAgeSeconds !== "number" || !Number.isInteger(v.maxAgeSeconds) || v.maxAgeSeconds < 0)
      fail(`${path}.maxAgeSeconds`, "expected a whole number of seconds >= 0");
    out.maxAgeSeconds = v.maxAgeSeconds;
  }
  if (v.allowCredentials !== undefined) {
    if (typeof v.allowCredentials !== "boolean") fail(`${path}.allowCredentials`, "expected true or false");
    out.allowCredentials = v.allowCredentials;
  }
  return out;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** An Access-Control-Request-Headers value, kept only when it is a plain list of header names. */
function sanitizeHeaderList(v: string | undefined): string | undefined {
  if (!v) return undefined;
  return /^[!#$%&'*+.^_`|~0-9A-Za-z-]+(\s*,\s*[!#$%&'*+.^_`|~0-9A-Za-z-]+)*$/.test(v.trim()) && v.length <= 4096 ? v.trim() : undefined;
}
