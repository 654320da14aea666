// The gRPC-over-HTTP/2 wire rules a server needs (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md):
// the 5-byte message prefix, `grpc-timeout`, metadata to and from HTTP/2 headers (`-bin`
// values base64), and `grpc-message` percent-encoding.
import * as grpc from "@grpc/grpc-js";
import { addHeaderValue } from "../metadata.js";

/** A gRPC status error raised while reading a call (a bad header, an oversized message). */
export class GrpcWireError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

const TIMEOUT_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };

/** `grpc-timeout` ("100m", "5S", at most 8 digits) in milliseconds; throws on a malformed value. */
export function parseGrpcTimeout(value: string): number {
  const m = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (!m) throw new GrpcWireError(grpc.status.INTERNAL, `malformed grpc-timeout ${JSON.stringify(value.slice(0, 20))}`);
  return Number(m[1]) * TIMEOUT_UNIT_MS[m[2]!]!;
}

/** Headers HTTP/2 or gRPC itself owns: never handed to the router as call metadata. */
const RESERVED = new Set([
  "content-type",
  "te",
  "grpc-timeout",
  "grpc-encoding",
  "grpc-accept-encoding",
  "accept-encoding",
  "user-agent",
  "content-length",
  "connection",
  "host",
]);

/**
 * Call metadata from the raw header list of an HTTP/2 stream ([name, value, name, value, …]),
 * every value in the order it came; `-bin` values decoded from base64 (padded or not; a
 * value holding several is split at ","). Pseudo-headers and transport headers are left out.
 */
export function metadataFromRawHeaders(raw: readonly string[]): grpc.Metadata {
  return metadataIfAny(raw) ?? new grpc.Metadata();
}

/**
 * metadataFromRawHeaders, or undefined when the headers hold nothing but pseudo-headers and
 * transport headers (most calls): then no Metadata is made at all.
 */
export function metadataIfAny(raw: readonly string[]): grpc.Metadata | undefined {
  let md: grpc.Metadata | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const key = raw[i]!.toLowerCase();
    if (key.charCodeAt(0) === 58 /* : */ || RESERVED.has(key)) continue;
    md ??= new grpc.Metadata();
    try {
      addHeaderValue(md, key, raw[i + 1]!);
    } catch {
      // A key grpc-js' Metadata refuses (uppercase or odd characters) is no gRPC metadata.
    }
  }
  return md;
}

/** Call metadata as HTTP/2 header fields: repeated keys as arrays, `-bin` values as unpadded base64. */
export function headersFromMetadata<T extends Record<string, unknown>>(md: grpc.Metadata | undefined, into: T): T {
  if (!md) return into;
  const map = md.toJSON() as Record<string, Array<string | Buffer>>;
  for (const key of Object.keys(map)) {
    if (RESERVED.has(key) || key === "grpc-status" || key === "grpc-message" || key.charCodeAt(0) === 58) continue;
    const values = map[key]!.map((v) => (typeof v === "string" ? v : Buffer.from(v).toString("base64").replace(/=+$/, "")));
    (into as Record<string, unknown>)[key] = values.length === 1 ? values[0]! : values;
  }
  return into;
}

/** `grpc-message` is percent-encoded: everything outside printable ASCII, and "%" itself. */
export function encodeGrpcMessage(message: string): string {
  // Fast path: most messages are plain ASCII.
  if (/^[\x20-\x24\x26-\x7e]*$/.test(message)) return message;
  let out = "";
  for (const byte of Buffer.from(message, "utf8")) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** Where a MessageReader delivers each message. */
export interface MessageSink {
  onMessage(message: Buffer): void;
}

/**
 * Splits HTTP/2 DATA chunks into gRPC messages (1 byte compressed flag, 4 bytes big-endian
 * length, the bytes). A message announced above `maxBytes` fails before any of it is
 * buffered; a set compressed flag fails (this server accepts only identity).
 */
export class MessageReader {
  /** Chunks of a message not complete yet; made when the first one is (most calls never need it). */
  private pending: Buffer[] | undefined;
  private pendingBytes = 0;
  /** Length of the message being read; -1 while reading a prefix. */
  private need = -1;

  /** `sink.onMessage` or `onMessage` (a sink with a method needs no closure per call). */
  constructor(maxBytes: number, onMessage: (message: Buffer) => void);
  constructor(maxBytes: number, sink: MessageSink);
  constructor(
    private readonly maxBytes: number,
    private readonly sink: MessageSink | ((message: Buffer) => void),
  ) {}

  private onMessage(message: Buffer): void {
    const sink = this.sink;
    if (typeof sink === "function") sink(message);
    else sink.onMessage(message);
  }

  /** True while part of a message is buffered (a stream ending now ended mid-message). */
  get partial(): boolean {
    return this.pendingBytes > 0;
  }

  push(chunk: Buffer): void {
    if (this.pendingBytes === 0 && this.need === -1) {
      // Whole messages in one chunk (the common case) are sliced out without copying.
      let at = 0;
      while (chunk.length - at >= 5) {
        const len = this.lengthAt(chunk, at);
        if (chunk.length - at - 5 < len) break;
        this.onMessage(chunk.subarray(at + 5, at + 5 + len));
        at += 5 + len;
      }
      if (at === chunk.length) return;
      chunk = chunk.subarray(at);
    }
    (this.pending ??= []).push(chunk);
    this.pendingBytes += chunk.length;
    for (;;) {
      if (this.need === -1) {
        if (this.pendingBytes < 5) return;
        const head = this.take(5);
        this.need = this.lengthAt(head, 0);
      }
      if (this.pendingBytes < this.need) return;
      const message = this.take(this.need);
      this.need = -1;
      this.onMessage(message);
    }
  }

  private lengthAt(b: Buffer, at: number): number {
    const flag = b[at]!;
    if (flag !== 0) {
      throw new GrpcWireError(
        flag === 1 ? grpc.status.UNIMPLEMENTED : grpc.status.INTERNAL,
        flag === 1 ? "compressed messages are not supported (grpc-accept-encoding: identity)" : `invalid message flags ${flag}`,
      );
    }
    const len = b.readUInt32BE(at + 1);
    if (len > this.maxBytes) {
      throw new GrpcWireError(grpc.status.RESOURCE_EXHAUSTED, `Received message larger than max (${len} vs. ${this.maxBytes})`);
    }
    return len;
  }

  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const pending = this.pending!;
    const first = pending[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) pending.shift();
      else pending[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let at = 0;
      while (at < n) {
        const b = pending[0]!;
        const k = Math.min(b.length, n - at);
        b.copy(out, at, 0, k);
        at += k;
        if (k === b.length) pending.shift();
        else pending[0] = b.subarray(k);
      }
    }
    this.pendingBytes -= n;
    return out;
  }
}

/**
 * Messages up to this size are written as one buffer, copied behind their prefix (a copy is
 * cheaper than a second write); larger ones as the prefix and the message (no copy).
 */
export const COPY_BELOW = 16 * 1024;

/** An uncompressed message behind its 5-byte prefix, in one new buffer. */
export function framedMessage(message: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(5 + message.length);
  b[0] = 0;
  b.writeUInt32BE(message.length, 1);
  b.set(message, 5);
  return b;
}

/** The 5-byte prefix of an uncompressed message of `length` bytes. */
export function messagePrefix(length: number): Buffer {
  const p = Buffer.allocUnsafe(5);
  p[0] = 0;
  p.writeUInt32BE(length, 1);
  return p;
}
