// One gRPC call on a node:http2 client session, as bytes: length-prefixed messages out and
// in, metadata as grpc-js Metadata, and exactly one status at the end — from the trailers,
// a trailers-only answer, the HTTP status, or the stream's reset, the way gRPC's HTTP/2
// protocol (doc/PROTOCOL-HTTP2.md) says a client reads them. Used for the Register stream
// and for the sidecar's calls to its target; every method kind is a stream on the wire.
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from "node:http2";
import * as grpc from "@grpc/grpc-js";
import { onDrainOrClose } from "../drained.js";
import { COPY_BELOW, framedMessage, messagePrefix } from "../http2/grpc-wire.js";
import type { MetadataEntry } from "../../gen/grpcrouter/v1/tunnel_pb.js";
import { isTransportKey } from "../metadata.js";

export interface GrpcCallListener {
  /**
   * Response headers (not called for a trailers-only answer); `custom`: whether they hold
   * anything beyond the transport's own (content-type, grpc-encoding, …).
   */
  onHeaders?(metadata: grpc.Metadata, custom: boolean): void;
  /** One response message's bytes (a view into the received data, not a copy). */
  onMessage(message: Buffer): void;
  /** Called exactly once, last. `metadata` holds the trailers, grpc-status-details-bin included. */
  onStatus(status: grpc.StatusObject): void;
}

export interface GrpcCallOptions {
  /** Absolute deadline (ms since the epoch); sent as grpc-timeout and enforced here too. */
  deadline?: number;
  /**
   * false: the deadline is only sent, the caller enforces it (the sidecar's calls: the
   * tunnel's call ends at its deadline and cancels this one), saving a timer per call.
   */
  enforceDeadline?: boolean;
  /** Largest response message accepted; default: no limit. */
  maxMessageBytes?: number;
}

const {
  HTTP2_HEADER_STATUS,
  HTTP2_HEADER_CONTENT_TYPE,
  NGHTTP2_CANCEL,
  NGHTTP2_NO_ERROR,
  NGHTTP2_REFUSED_STREAM,
  NGHTTP2_ENHANCE_YOUR_CALM,
  NGHTTP2_INADEQUATE_SECURITY,
} = http2.constants;

const USER_AGENT = "grpcrouter-bridge";

/**
 * node's request() copies its options with a spread and then fills in the priority fields it
 * lacks; given here (with node's defaults), they are overwrites, not new keys on the copy,
 * which take V8's slow path (microseconds a call on Node 20).
 */
const REQUEST_OPTIONS = { endStream: false, weight: http2.constants.NGHTTP2_DEFAULT_WEIGHT, parent: 0, exclusive: false, silent: false } as const;

const EMPTY_OPTIONS: GrpcCallOptions = {};

/** Metadata keys grpc-js accepts (lower case: tunnel entries may carry any case). */
const LEGAL_KEY = /^[0-9a-z_.-]+$/;
/** Text values grpc-js accepts: printable ASCII. */
const LEGAL_VALUE = /^[ -~]*$/;

/**
 * Tunnel metadata entries as HTTP/2 request headers, the way grpc-js Metadata would send
 * them: `-bin` values base64, repeated keys as several fields in order, transport keys and
 * what grpc-js refuses left out (a header node:http2 refuses would fail the whole call).
 */
function addEntries(headers: OutgoingHttpHeaders, entries: readonly MetadataEntry[]): void {
  for (const e of entries) {
    const key = e.key.toLowerCase();
    if (isTransportKey(key) || !LEGAL_KEY.test(key)) continue;
    const v = e.value;
    const bytes = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    let value: string;
    if (key.endsWith("-bin")) value = bytes.toString("base64");
    else {
      value = bytes.toString("utf8");
      if (!LEGAL_VALUE.test(value)) continue;
    }
    const had = headers[key];
    if (had === undefined) headers[key] = value;
    else if (Array.isArray(had)) had.push(value);
    else headers[key] = [had as string, value];
  }
}

/** Why a session failed (set by its owner): a call cut off by it reports that, not a bare reset. */
export const sessionErrors = new WeakMap<ClientHttp2Session, Error>();

export class GrpcClientStream {
  private readonly stream: ClientHttp2Stream;
  private localStatus: grpc.StatusObject | undefined;
  private responseHeaders: IncomingHttpHeaders | undefined;
  private trailers: IncomingHttpHeaders | undefined;
  private reported = false;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private streamError: Error | undefined;
  // Incoming bytes not yet a whole message.
  private chunks: Buffer[] = [];
  private buffered = 0;

  /**
   * `metadata`: grpc-js Metadata, or the tunnel's entries as they came (turned into headers
   * directly, with grpc-js's rules for keys and values: what it would refuse is left out).
   */
  constructor(
    private readonly session: ClientHttp2Session,
    path: string,
    metadata: grpc.Metadata | readonly MetadataEntry[] | undefined,
    private readonly listener: GrpcCallListener,
    private readonly options: GrpcCallOptions = EMPTY_OPTIONS,
  ) {
    // One shape for every call; node copies the object and fills in :scheme and :authority.
    const headers: OutgoingHttpHeaders = { ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers" };
    if (Array.isArray(metadata)) addEntries(headers, metadata as readonly MetadataEntry[]);
    else if (metadata) {
      const md = (metadata as grpc.Metadata).toHttp2Headers();
      for (const key of Object.keys(md)) if (!isTransportKey(key)) headers[key] = md[key];
    }
    headers["user-agent"] ??= USER_AGENT;
    const deadline = options.deadline;
    if (deadline !== undefined && Number.isFinite(deadline)) headers["grpc-timeout"] = grpcTimeout(deadline - Date.now());
    this.stream = session.request(headers, REQUEST_OPTIONS);
    const s = this.stream as CallStream;
    // Listeners shared by every call (the stream knows its call): no closures per call.
    s[CALL] = this;
    s.on("response", onResponse);
    s.on("data", onData);
    s.on("trailers", onTrailers);
    s.on("error", onError);
    s.on("end", onEnd);
    s.on("close", onClose);
    if (deadline !== undefined && Number.isFinite(deadline) && options.enforceDeadline !== false) {
      this.deadlineTimer = setTimeout(() => this.cancel(grpc.status.DEADLINE_EXCEEDED, "Deadline exceeded"), Math.max(0, deadline - Date.now()));
    }
  }

  /** @internal Response headers (or a trailers-only answer). */
  gotHeaders(h: IncomingHttpHeaders): void {
    this.responseHeaders = h;
    // A trailers-only answer (grpc-status in the headers) has no headers of its own.
    if (h["grpc-status"] === undefined && Number(h[HTTP2_HEADER_STATUS]) === 200 && this.listener.onHeaders) {
      const md = metadataOf(h);
      this.listener.onHeaders(md ?? new grpc.Metadata(), md !== undefined);
    }
  }

  /** @internal */
  gotTrailers(t: IncomingHttpHeaders): void {
    this.trailers = t;
  }

  /** @internal */
  gotError(e: Error): void {
    this.streamError ??= e;
  }

  /**
   * @internal The server's END_STREAM ends the call, even while this side still has messages
   * to send (node closes the stream only when both sides have ended): report, then reset ours.
   */
  gotEnd(): void {
    this.report();
    const s = this.stream;
    // Once this side has ended too, node closes the stream by itself; closing it here
    // would fail the writes still completing (an error object each).
    if (!s.destroyed && !s.writableEnded) s.close(NGHTTP2_NO_ERROR);
  }

  /** Sends one message; false when the stream's buffer is full (wait for onDrain). */
  write(message: Uint8Array): boolean {
    if (this.stream.destroyed || this.stream.writableEnded) return false;
    if (message.length <= COPY_BELOW) return this.stream.write(framedMessage(message));
    // One writev, so the prefix and the message leave in the same DATA frame.
    this.stream.cork();
    this.stream.write(messagePrefix(message.length));
    const ok = this.stream.write(message);
    process.nextTick(uncork, this.stream);
    return ok;
  }

  /** Resolves once the stream can take more (or has ended). */
  drained(): Promise<void> {
    if (!this.stream.writableNeedDrain || this.stream.destroyed) return Promise.resolve();
    return new Promise((resolve) => onDrainOrClose(this.stream, resolve));
  }

  /** Half-closes: no more messages from this side. */
  end(): void {
    if (!this.stream.destroyed && !this.stream.writableEnded) this.stream.end();
  }

  /** Stops reading responses until resume() (flow control reaches the server). */
  pause(): void {
    this.stream.pause();
  }

  resume(): void {
    this.stream.resume();
  }

  /** Ends the call from this side (RST_STREAM CANCEL) with the given status. */
  cancel(code: number = grpc.status.CANCELLED, details = "Cancelled on client"): void {
    if (this.reported || this.localStatus) return;
    this.localStatus = { code, details, metadata: new grpc.Metadata() };
    if (!this.stream.destroyed) this.stream.close(NGHTTP2_CANCEL);
  }

  get ended(): boolean {
    return this.reported;
  }

  /** Response bytes taken so far, whole messages or not (a Register stream's keepalive looks). */
  bytesReceived = 0;

  /** @internal */
  onData(chunk: Buffer): void {
    this.bytesReceived += chunk.length;
    if (this.localStatus || this.reported) return;
    if (this.buffered === 0 && this.chunks.length === 0) {
      this.parse(chunk);
      return;
    }
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    if (this.buffered < 5) return;
    // Join only once the whole message is there: a large message arrives in many chunks.
    const head = this.chunks[0]!.length >= 5 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
    if (this.buffered < 5 + head.readUInt32BE(1)) return;
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
    this.chunks = [];
    this.buffered = 0;
    this.parse(all);
  }

  /** Emits the whole messages in `buf` and keeps the rest. */
  private parse(buf: Buffer): void {
    let pos = 0;
    const max = this.options.maxMessageBytes ?? Infinity;
    while (buf.length - pos >= 5) {
      if ((buf[pos]! & 1) !== 0) {
        return this.cancel(grpc.status.INTERNAL, "the server sent a compressed message, but no compression was negotiated");
      }
      const len = buf.readUInt32BE(pos + 1);
      if (len > max) return this.cancel(grpc.status.RESOURCE_EXHAUSTED, `received a message of ${len} bytes, larger than the limit of ${max}`);
      if (buf.length - pos - 5 < len) break;
      this.listener.onMessage(buf.subarray(pos + 5, pos + 5 + len));
      pos += 5 + len;
      if (this.localStatus || this.reported) return;
    }
    if (pos < buf.length) {
      this.chunks.push(buf.subarray(pos));
      this.buffered = buf.length - pos;
    }
  }

  /** @internal The stream closed, or the server ended it: the status, once. */
  report(): void {
    if (this.reported) return;
    this.reported = true;
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.listener.onStatus(this.localStatus ?? this.remoteStatus());
  }

  /** What the server's answer (or its absence) means, per gRPC over HTTP/2. */
  private remoteStatus(): grpc.StatusObject {
    const t = this.trailers ?? (this.responseHeaders?.["grpc-status"] !== undefined ? this.responseHeaders : undefined);
    if (t) {
      const code = Number(t["grpc-status"]);
      const metadata = metadataOf(t) ?? new grpc.Metadata();
      return { code: Number.isInteger(code) && code >= 0 && code <= 16 ? code : grpc.status.UNKNOWN, details: decodeMessage(t["grpc-message"]), metadata };
    }
    const rst = this.stream.rstCode;
    if (this.session.destroyed && (rst === undefined || rst === NGHTTP2_CANCEL || rst === NGHTTP2_NO_ERROR)) {
      // Not the server's reset: the connection went (node resets its streams with CANCEL).
      const why = sessionErrors.get(this.session)?.message ?? this.streamError?.message;
      return { code: grpc.status.UNAVAILABLE, details: `Connection dropped${why ? `: ${why}` : ""}`, metadata: new grpc.Metadata() };
    }
    if (rst !== undefined && rst !== NGHTTP2_NO_ERROR) {
      const code =
        rst === NGHTTP2_REFUSED_STREAM
          ? grpc.status.UNAVAILABLE
          : rst === NGHTTP2_CANCEL
            ? grpc.status.CANCELLED
            : rst === NGHTTP2_ENHANCE_YOUR_CALM
              ? grpc.status.RESOURCE_EXHAUSTED
              : rst === NGHTTP2_INADEQUATE_SECURITY
                ? grpc.status.PERMISSION_DENIED
                : grpc.status.INTERNAL;
      const why = this.streamError && !/RST_STREAM|NGHTTP2_/.test(this.streamError.message) ? `: ${this.streamError.message}` : "";
      return { code, details: `Received RST_STREAM with code ${rst}${why}`, metadata: new grpc.Metadata() };
    }
    const h = this.responseHeaders;
    if (!h) {
      const why = this.streamError?.message ?? "the connection closed before the server answered";
      return { code: grpc.status.UNAVAILABLE, details: why, metadata: new grpc.Metadata() };
    }
    const httpStatus = Number(h[HTTP2_HEADER_STATUS]);
    if (httpStatus !== 200) return { code: codeOfHttpStatus(httpStatus), details: `Received HTTP status code ${httpStatus}`, metadata: new grpc.Metadata() };
    const type = String(h[HTTP2_HEADER_CONTENT_TYPE] ?? "");
    if (!type.startsWith("application/grpc"))
      return { code: grpc.status.UNKNOWN, details: `the server answered with content-type ${type || "(none)"}, not gRPC`, metadata: new grpc.Metadata() };
    return { code: grpc.status.UNKNOWN, details: "the server ended the call without a status", metadata: new grpc.Metadata() };
  }
}

const CALL = Symbol("grpcrouter.clientCall");
type CallStream = ClientHttp2Stream & { [CALL]: GrpcClientStream };
function onResponse(this: CallStream, h: IncomingHttpHeaders): void {
  this[CALL].gotHeaders(h);
}
function onData(this: CallStream, chunk: Buffer): void {
  this[CALL].onData(chunk);
}
function onTrailers(this: CallStream, t: IncomingHttpHeaders): void {
  this[CALL].gotTrailers(t);
}
function onError(this: CallStream, e: Error): void {
  this[CALL].gotError(e);
}
function onEnd(this: CallStream): void {
  this[CALL].gotEnd();
}
function onClose(this: CallStream): void {
  this[CALL].report();
}

function uncork(s: ClientHttp2Stream): void {
  s.uncork();
}

/**
 * Response headers or trailers as Metadata: transport keys left out, `-bin` values decoded;
 * undefined when nothing is left.
 */
function metadataOf(h: IncomingHttpHeaders): grpc.Metadata | undefined {
  let kept: IncomingHttpHeaders | undefined;
  for (const key of Object.keys(h)) {
    if (
      key.startsWith(":") ||
      key === "content-type" ||
      key === "grpc-status" ||
      key === "grpc-message" ||
      key === "grpc-encoding" ||
      key === "grpc-accept-encoding" ||
      key === "date"
    )
      continue;
    (kept ??= {})[key] = h[key];
  }
  return kept && grpc.Metadata.fromHttp2Headers(kept);
}

function decodeMessage(value: string | string[] | undefined): string {
  const v = Array.isArray(value) ? value.join(",") : (value ?? "");
  try {
    return decodeURIComponent(v);
  } catch {
    return v;
  }
}

/** gRPC's mapping of an HTTP status without a gRPC status (doc/http-grpc-status-mapping.md). */
function codeOfHttpStatus(s: number): number {
  switch (s) {
    case 400:
      return grpc.status.INTERNAL;
    case 401:
      return grpc.status.UNAUTHENTICATED;
    case 403:
      return grpc.status.PERMISSION_DENIED;
    case 404:
      return grpc.status.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return grpc.status.UNAVAILABLE;
    default:
      return grpc.status.UNKNOWN;
  }
}

/** A grpc-timeout value: at most 8 digits, in the finest unit that fits. */
function grpcTimeout(ms: number): string {
  const m = Math.max(1, Math.ceil(ms));
  if (m < 1e8) return `${m}m`;
  const s = Math.ceil(m / 1000);
  if (s < 1e8) return `${s}S`;
  const min = Math.ceil(s / 60);
  if (min < 1e8) return `${min}M`;
  return `${Math.min(99_999_999, Math.ceil(min / 60))}H`;
}
