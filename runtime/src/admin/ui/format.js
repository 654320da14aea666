// Pure helpers of the dashboard: formatting, "copy as grpcurl", JSON Lines export.

export const STATUS_NAMES = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
];

export function statusName(code) {
  return STATUS_NAMES[code] ?? `CODE_${code}`;
}

/** "0.012345s" (proto3 JSON Duration) → milliseconds. */
export function durationMs(text) {
  if (typeof text !== "string" || !text.endsWith("s")) return 0;
  return Number(text.slice(0, -1)) * 1000;
}

/** "2026-01-02T03:04:05.678Z" (proto3 JSON Timestamp) → milliseconds; now when there is none. */
export function tsMs(text) {
  return text ? Date.parse(text) : Date.now();
}

export function formatDuration(ms) {
  if (!Number.isFinite(ms)) return "";
  if (ms < 1) return `${(ms * 1000).toFixed(0)} µs`;
  if (ms < 1000) return `${ms < 10 ? ms.toFixed(1) : ms.toFixed(0)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(2)} s`;
  return `${Math.floor(ms / 60000)} m ${Math.round((ms % 60000) / 1000)} s`;
}

export function formatClock(ms) {
  const d = new Date(ms);
  const p = (n, w = 2) => String(n).padStart(w, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

export function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** "/pkg.v1.Svc/Method" → { service: "pkg.v1.Svc", name: "Method", short: "Svc/Method" } */
export function splitMethod(path) {
  const m = /^\/?([^/]+)\/([^/]+)$/.exec(path ?? "");
  if (!m) return { service: "", name: path ?? "", short: path ?? "" };
  const service = m[1];
  const simple = service.slice(service.lastIndexOf(".") + 1);
  return { service, name: m[2], short: `${simple}/${m[2]}` };
}

/** Pretty-prints proto3 JSON; a cut (truncated) body is shown as it is. */
export function prettyJson(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

function shellQuote(s) {
  return `'${String(s).replace(/'/g, `'\\''`)}'`;
}

// Set by gRPC itself or the transport; replaying them by hand would be wrong or rejected.
const TRANSPORT_HEADERS = new Set([
  "user-agent",
  "content-type",
  "te",
  "grpc-timeout",
  "grpc-encoding",
  "grpc-accept-encoding",
  "accept-encoding",
  "content-length",
  "host",
  "connection",
]);

/**
 * `grpcurl -plaintext -d '<json>' -H 'k: v' host:port pkg.Svc/Method` for a captured call,
 * or { error } saying why it cannot be built (streamed request, body missing, …).
 */
export function grpcurlCommand(call, routerAddress) {
  const requests = call.messages.filter((m) => m.direction === "request");
  if (call.kind === "client_streaming" || call.kind === "bidi_streaming") {
    return { error: "only calls with a single request can be replayed with grpcurl -d" };
  }
  if (requests.length !== 1) return { error: requests.length === 0 ? "no request message was captured" : "more than one request message" };
  const req = requests[0];
  if (!req.json) return { error: req.jsonError ? `request body unavailable: ${req.jsonError}` : "the request body was not captured" };
  if (req.jsonTruncated) return { error: "the request body was cut at the configured size" };
  let body;
  try {
    body = JSON.stringify(JSON.parse(req.json));
  } catch {
    return { error: "the request body is not valid JSON" };
  }
  const parts = ["grpcurl", "-plaintext", "-d", shellQuote(body)];
  const skipped = [];
  for (const [key, value] of Object.entries(call.metadata ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
    if (key.startsWith(":") || key.startsWith("grpc-") || TRANSPORT_HEADERS.has(key)) continue;
    if (value === "[redacted]") {
      skipped.push(key);
      continue;
    }
    parts.push("-H", shellQuote(`${key}: ${value}`));
  }
  parts.push(routerAddress || "localhost:PORT", call.method.replace(/^\//, ""));
  return { command: parts.join(" "), skipped };
}

/** The calls as admin Events in proto3 JSON, one per line, in the order they happened. */
export function callsToJsonl(calls) {
  const lines = [];
  for (const c of calls) {
    lines.push(JSON.stringify({ time: c.raw.time, callStarted: c.raw }));
    if (c.headers) lines.push(JSON.stringify({ callHeaders: { callId: c.id, metadata: c.headers } }));
    for (const m of c.messages) lines.push(JSON.stringify({ time: m.raw.time, callMessage: m.raw }));
    if (c.ended) lines.push(JSON.stringify({ callEnded: c.ended.raw }));
  }
  return lines.length ? lines.join("\n") + "\n" : "";
}
