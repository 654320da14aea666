// The Register stream over WebSocket (RFC 6455), for paths that carry HTTP/1.1 only (a
// reverse proxy or load balancer that strips HTTP/2). What changes is the envelope, never
// the stream: the Upgrade request carries the call (path, and its metadata as HTTP headers:
// authorization, …), each binary WebSocket message is exactly one gRPC message of the call
// (a Register message: a batch of tunnel frames) — WebSocket frames messages itself, so
// gRPC's 5-byte length prefix is left out and the message limit is WebSocket's own
// `maxPayload`, checked from the frame header before anything is buffered — and the call's
// status is the close frame: 1000 for OK, 4000 + the gRPC code otherwise, the status message
// as the close reason (at most 123 bytes); trailing metadata, when the status has any (a
// backoff hint, …), goes just before it as the one text message of the connection: a JSON
// object of the trailer fields as HTTP/2 would carry them (`-bin` values in base64). A
// client's close 1000 is its half-close; a client never sends text.
//
// The subprotocol names this mapping, so that a WebSocket client that is not a bridge
// (a browser, a scanner) is refused before anything else happens.
import * as grpc from "@grpc/grpc-js";

export const WEBSOCKET_PROTOCOL = "grpcrouter.v1";

/** Close codes 4000–4999 are for applications (RFC 6455 §7.4.2): 4000 + a gRPC status code. */
const STATUS_CLOSE_BASE = 4000;
/** A close frame's reason is at most 123 bytes (125 minus the code). */
const MAX_REASON_BYTES = 123;

/** The close frame that carries a call's status. */
export function closeOfStatus(code: number, message: string): { code: number; reason: string } {
  if (code === grpc.status.OK) return { code: 1000, reason: "" };
  return { code: STATUS_CLOSE_BASE + code, reason: truncateUtf8(message, MAX_REASON_BYTES) };
}

/** The status a close frame (or a connection lost without one: 1006) stands for. */
export function statusOfClose(code: number, reason: string): { code: number; details: string } {
  if (code === 1000) return { code: grpc.status.OK, details: reason };
  if (code >= STATUS_CLOSE_BASE && code <= STATUS_CLOSE_BASE + 16) return { code: code - STATUS_CLOSE_BASE, details: reason };
  if (code === 1009) return { code: grpc.status.RESOURCE_EXHAUSTED, details: `WebSocket closed: message too big${reason ? ` (${reason})` : ""}` };
  const why = code === 1006 ? "the connection was lost" : `close code ${code}`;
  return { code: grpc.status.UNAVAILABLE, details: `WebSocket closed: ${why}${reason ? ` (${reason})` : ""}` };
}

function truncateUtf8(s: string, max: number): string {
  if (Buffer.byteLength(s) <= max) return s;
  let out = Buffer.from(s)
    .subarray(0, max - 3)
    .toString();
  // A multi-byte character cut in two decodes as U+FFFD: drop it.
  if (out.endsWith("\uFFFD")) out = out.slice(0, -1);
  while (Buffer.byteLength(`${out}...`) > max) out = out.slice(0, -1);
  return `${out}...`;
}

/** Upgrade request headers that are HTTP's or WebSocket's, not call metadata. */
const NOT_METADATA = new Set(["host", "connection", "upgrade", "origin", "keep-alive", "proxy-connection", "transfer-encoding", "content-length", "te"]);

export function isUpgradeMetadataHeader(name: string): boolean {
  const k = name.toLowerCase();
  return !NOT_METADATA.has(k) && !k.startsWith("sec-websocket-");
}
