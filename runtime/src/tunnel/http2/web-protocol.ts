// The wire rules of the browser protocols the router speaks besides gRPC:
// gRPC-Web (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-WEB.md: binary and
// base64 "-text"; the status travels as a body frame flagged 0x80) and the Connect protocol
// (https://connectrpc.com/docs/protocol: unary as a plain HTTP exchange whose errors are
// JSON with an HTTP status; streaming with 5-byte envelopes ending in a 0x02 JSON frame).
import { BinaryReader } from "@bufbuild/protobuf/wire";
import type * as grpc from "@grpc/grpc-js";
import { encodeGrpcMessage, headersFromMetadata } from "./grpc-wire.js";

export type WebProtocol =
  | { readonly kind: "grpc-web"; readonly text: boolean; readonly contentType: string }
  | { readonly kind: "connect-unary"; readonly json: boolean; readonly contentType: string }
  | { readonly kind: "connect-stream"; readonly json: boolean; readonly contentType: string };

/** The protocol of a request by its content-type; undefined for anything else. */
export function webProtocolOf(contentType: string): WebProtocol | undefined {
  const base = contentType.split(";")[0]!.trim().toLowerCase();
  switch (base) {
    case "application/grpc-web":
    case "application/grpc-web+proto":
      return { kind: "grpc-web", text: false, contentType: "application/grpc-web+proto" };
    case "application/grpc-web-text":
    case "application/grpc-web-text+proto":
      return { kind: "grpc-web", text: true, contentType: "application/grpc-web-text+proto" };
    case "application/proto":
      return { kind: "connect-unary", json: false, contentType: "application/proto" };
    case "application/json":
      return { kind: "connect-unary", json: true, contentType: "application/json" };
    case "application/connect+proto":
      return { kind: "connect-stream", json: false, contentType: "application/connect+proto" };
    case "application/connect+json":
      return { kind: "connect-stream", json: true, contentType: "application/connect+json" };
    default:
      return undefined;
  }
}

export const WEB_CONTENT_TYPES =
  "application/grpc-web(+proto), application/grpc-web-text(+proto), application/proto, application/json, application/connect+proto, application/connect+json";

const CONNECT_CODES = [
  "ok",
  "canceled",
  "unknown",
  "invalid_argument",
  "deadline_exceeded",
  "not_found",
  "already_exists",
  "permission_denied",
  "resource_exhausted",
  "failed_precondition",
  "aborted",
  "out_of_range",
  "unimplemented",
  "internal",
  "unavailable",
  "data_loss",
  "unauthenticated",
] as const;
const HTTP_STATUS = [200, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401];

/** Connect's name of a gRPC status code ("not_found"). */
export function connectCodeName(code: number): string {
  return CONNECT_CODES[code] ?? "unknown";
}

/** The HTTP status a Connect unary error carries. */
export function connectHttpStatus(code: number): number {
  return HTTP_STATUS[code] ?? 500;
}

const DETAILS_KEY = "grpc-status-details-bin";

/** Connect's error object: code, message and the details of grpc-status-details-bin (a google.rpc.Status). */
export function connectErrorJson(code: number, message: string, trailers: grpc.Metadata | undefined): Record<string, unknown> {
  const error: Record<string, unknown> = { code: connectCodeName(code) };
  if (message) error.message = message;
  const raw = trailers?.get(DETAILS_KEY)[0];
  if (raw instanceof Uint8Array) {
    const details = statusDetails(raw);
    if (details.length > 0) error.details = details;
  }
  return error;
}

/** The Any details of an encoded google.rpc.Status, as Connect's {type, value} (value base64). */
function statusDetails(bytes: Uint8Array): Array<{ type: string; value: string }> {
  const out: Array<{ type: string; value: string }> = [];
  try {
    const r = new BinaryReader(bytes);
    while (r.pos < r.len) {
      const [field, wireType] = r.tag();
      if (field !== 3) {
        r.skip(wireType);
        continue;
      }
      const any = new BinaryReader(r.bytes());
      let typeUrl = "";
      let value: Uint8Array = new Uint8Array(0);
      while (any.pos < any.len) {
        const [f, w] = any.tag();
        if (f === 1) typeUrl = any.string();
        else if (f === 2) value = any.bytes();
        else any.skip(w);
      }
      out.push({ type: typeUrl.slice(typeUrl.lastIndexOf("/") + 1), value: Buffer.from(value).toString("base64").replace(/=+$/, "") });
    }
  } catch {
    // Malformed details: the error still carries its code and message.
  }
  return out;
}

/** Call metadata as Connect's end-of-stream "metadata" object (name → values). */
export function metadataJson(md: grpc.Metadata | undefined): Record<string, string[]> {
  const h = headersFromMetadata(md, {} as Record<string, string | string[]>);
  const out: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(h)) if (k !== DETAILS_KEY) out[k] = Array.isArray(v) ? v : [v];
  return out;
}

/** An envelope (Connect) or frame (gRPC-Web): flags, 4-byte big-endian length, bytes. */
export function envelope(flags: number, body: Buffer): Buffer {
  const b = Buffer.allocUnsafe(5 + body.length);
  b[0] = flags;
  b.writeUInt32BE(body.length, 1);
  body.copy(b, 5);
  return b;
}

/** gRPC-Web's trailer frame (flag 0x80): the status and trailers as HTTP/1 header lines. */
export function grpcWebTrailerFrame(code: number, message: string, trailers: grpc.Metadata | undefined): Buffer {
  const fields: Record<string, string | string[]> = { "grpc-status": String(code) };
  if (message) fields["grpc-message"] = encodeGrpcMessage(message);
  headersFromMetadata(trailers, fields);
  let text = "";
  for (const [k, v] of Object.entries(fields)) for (const one of Array.isArray(v) ? v : [v]) text += `${k}: ${one}\r\n`;
  return envelope(0x80, Buffer.from(text, "latin1"));
}

/**
 * Decodes gRPC-Web-text request bodies: base64 arriving in arbitrary chunks, possibly as
 * several padded pieces one after another.
 */
export class Base64Decoder {
  private carry = "";

  push(chunk: Buffer): Buffer {
    const text = this.carry + chunk.toString("latin1").replace(/[\r\n\t ]/g, "");
    const whole = text.length - (text.length % 4);
    this.carry = text.slice(whole);
    if (whole === 0) return Buffer.alloc(0);
    const body = text.slice(0, whole);
    if (!/^[A-Za-z0-9+/=]*$/.test(body)) throw new Error("the request body is not base64");
    // Padding ends a piece; each piece decodes on its own.
    const pieces = body.includes("=") ? body.split(/(?<==)(?=[^=])/) : [body];
    return pieces.length === 1 ? Buffer.from(body, "base64") : Buffer.concat(pieces.map((p) => Buffer.from(p, "base64")));
  }

  /** True when base64 was left without its last characters. */
  get partial(): boolean {
    return this.carry.length > 0;
  }
}

/** Encodes gRPC-Web-text response bytes without padding between writes (3-byte groups carry over). */
export class Base64Encoder {
  private carry: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): string {
    const all = this.carry.length ? Buffer.concat([this.carry, chunk]) : chunk;
    const whole = all.length - (all.length % 3);
    this.carry = Buffer.from(all.subarray(whole));
    return all.subarray(0, whole).toString("base64");
  }

  flush(): string {
    const s = this.carry.toString("base64");
    this.carry = Buffer.alloc(0);
    return s;
  }
}
