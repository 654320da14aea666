// One gRPC call on a node:http2 server stream, as the router sees it: its metadata,
// deadline and peer; request messages (with pause/resume, which is HTTP/2 flow control);
// response headers, messages and the status, trailers-only when nothing was sent before.
import http2, { type OutgoingHttpHeaders, type ServerHttp2Stream } from "node:http2";
import type { TLSSocket } from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { peerCertificateFromSocket, type PeerCertificateInfo } from "../peer-certificate.js";
import { onDrainOrClose } from "../drained.js";
import type { GrpcMethod } from "./server.js";
import { closeSessionIfOnly, onStreamClosed } from "./session-streams.js";
import {
  COPY_BELOW,
  encodeGrpcMessage,
  framedMessage,
  GrpcWireError,
  headersFromMetadata,
  MessageReader,
  messagePrefix,
  type MessageSink,
} from "./grpc-wire.js";

/** What a call reports to the code that serves it. */
export interface CallListener {
  /** A request message (a view of the received bytes). */
  message(message: Buffer): void;
  /** The client sent all its messages. */
  halfClose(): void;
  /**
   * The call ended before its code ended it: the client cancelled (RST_STREAM, a closed
   * connection), or, with `error`, its request broke the wire rules and the client got `error`.
   */
  cancel(error?: { code: number; message: string }): void;
}

/** How a call reached the server: HTTP/2 without TLS (h2c) or over it (h2), WebSocket (ws) or over TLS (wss). */
export type CallTransport = "h2c" | "h2" | "ws" | "wss";

/** The narrow face of a client call the router's call code talks to (see router-call.ts). */
export interface ServerCall {
  readonly path: string;
  readonly metadata: grpc.Metadata;
  /**
   * False when the client sent no metadata: `metadata` is then empty (and made only when
   * read). Optional: undefined says nothing.
   */
  readonly hasMetadata?: boolean;
  /** Epoch ms; Infinity without `grpc-timeout`. */
  readonly deadline: number;
  /** "host:port" of the client, as grpc-js writes it. */
  readonly peer: string;
  /** The client's TLS certificate (mTLS), else undefined. */
  peerCertificate(): PeerCertificateInfo | undefined;
  /**
   * How the call reached the server. Read for the admin views when an instance's registration
   * changes, never per call. Optional: undefined says nothing.
   */
  readonly transport?: CallTransport;
  /** Starts delivering request messages and the cancel; a later call replaces the listener. */
  listen(listener: CallListener): void;
  pause(): void;
  resume(): void;
  /** Sends response headers now (else with the first message or the status). */
  sendHeaders(metadata?: grpc.Metadata): void;
  /**
   * Writes a response message; `flushed` runs once HTTP/2 took the bytes. False when the
   * stream's buffer is full: wait for `drained()` before writing more.
   */
  write(message: Buffer, flushed?: () => void): boolean;
  /** Resolves when the stream can take more (or the call is over). */
  drained(): Promise<void>;
  /** Ends the call with a status; trailers-only when no headers or message went out. */
  end(code: number, message: string, trailers?: grpc.Metadata): void;
  readonly ended: boolean;
  /**
   * Request bytes taken so far, whole messages or not: a peer in the middle of a long message
   * is not silent (the Register stream's heartbeat looks). Optional: undefined says nothing.
   */
  readonly bytesReceived?: number;
  /**
   * Resets the HTTP/2 stream (RST_STREAM CANCEL) at once, dropping what is queued for a peer
   * that does not read; a status would wait behind that data. Optional: only a stream that
   * can be reset has it.
   */
  reset?(): void;
  /**
   * The peer is gone (silent past its timeout, or replaced by its reconnect), after end():
   * closes the connection under this call unless other calls use it, so a dead peer's
   * connection does not linger until TCP gives up. Optional, like reset.
   */
  abandon?(): void;
}

const sessionPeers = new WeakMap<object, string>();
const CALL = Symbol("grpcrouter.call");
type CallStream = ServerHttp2Stream & { [CALL]: Http2ServerCall };
function onStreamClose(this: ServerHttp2Stream): void {
  (this as CallStream)[CALL].streamClosed();
}
function onWantTrailers(this: CallStream): void {
  this[CALL].trailersWanted();
}
function onStreamData(this: CallStream, chunk: Buffer): void {
  this[CALL].requestData(chunk);
}
function onStreamEnd(this: CallStream): void {
  this[CALL].requestEnded();
}
function ignore(): void {}
/**
 * A fresh object each time, as a literal: keys added to a spread copy (`{ ...BASE, more }`)
 * take V8's slow path, microseconds per call on Node 20.
 */
const baseHeaders = (): Record<string, string | string[] | number> => ({
  ":status": 200,
  "content-type": "application/grpc",
  "grpc-accept-encoding": "identity",
});
/**
 * The response headers of a call whose instance sent no metadata (most calls): one object for
 * all of them. node only reads what it is given (it copies the headers before adding to them).
 */
const RESPONSE_HEADERS = Object.freeze(baseHeaders());
/** The trailers of a call that ended OK with no message and no metadata (most calls). */
const OK_TRAILERS = Object.freeze({ "grpc-status": "0" });
/** `grpc-status` values, made once. */
const STATUS_TEXT = Array.from({ length: 17 }, (_, code) => String(code));
/**
 * node's respond() copies its options with a spread and then sets `endStream`: given here,
 * that is an overwrite, not a new key on the copy (V8's slow path, microseconds a call).
 */
const RESPOND_WITH_TRAILERS = { endStream: false, waitForTrailers: true } as const;

export class Http2ServerCall implements ServerCall, MessageSink {
  private listener: CallListener | undefined;
  private reader: MessageReader | undefined;
  private headersSent = false;
  private done = false;
  private trailers: Readonly<Record<string, string | string[]>> | undefined;
  private paused = false;
  bytesReceived = 0;

  /** The client's metadata; undefined until read when it sent none. */
  private md: grpc.Metadata | undefined;
  readonly hasMetadata: boolean;

  constructor(
    private readonly stream: ServerHttp2Stream,
    readonly path: string,
    /** undefined when the client sent no metadata (an empty one is made if it is read). */
    metadata: grpc.Metadata | undefined,
    readonly deadline: number,
    private readonly maxRequestBytes: number,
  ) {
    this.md = metadata;
    this.hasMetadata = metadata !== undefined;
    // Listeners shared by every call (the stream knows its call): no closures per call.
    (stream as CallStream)[CALL] = this;
    onStreamClosed(stream, onStreamClose);
    stream.on("error", ignore); // 'close' follows; a reset stream is a cancel, not a crash
    stream.on("wantTrailers", onWantTrailers);
  }

  /** @internal The stream closed (after our status, or the client's reset). */
  streamClosed(): void {
    if (this.done) return;
    this.done = true;
    this.listener?.cancel();
  }

  /** @internal HTTP/2 is ready for the trailers. */
  trailersWanted(): void {
    try {
      this.stream.sendTrailers(this.trailers ?? OK_TRAILERS);
    } catch {
      // the stream is gone
    }
  }

  /** @internal A chunk of request bytes. */
  requestData(chunk: Buffer): void {
    if (this.done) return;
    this.bytesReceived += chunk.length;
    try {
      this.reader!.push(chunk);
    } catch (e) {
      this.failRead(e);
    }
  }

  /** @internal The client's END_STREAM. */
  requestEnded(): void {
    if (this.done) return;
    if (this.reader!.partial) return this.failRead(new GrpcWireError(grpc.status.INTERNAL, "the request ended inside a message"));
    this.listener!.halfClose();
  }

  get ended(): boolean {
    return this.done;
  }

  get metadata(): grpc.Metadata {
    return (this.md ??= new grpc.Metadata());
  }

  get peer(): string {
    const session = this.stream.session;
    if (!session) return "";
    // Once per connection: node's session.socket is a Proxy, and every call asks.
    let peer = sessionPeers.get(session);
    if (peer === undefined) {
      peer = peerOf(session.socket);
      if (peer !== "") sessionPeers.set(session, peer);
    }
    return peer;
  }

  get transport(): CallTransport | undefined {
    const encrypted = this.stream.session?.encrypted;
    return encrypted === undefined ? undefined : encrypted ? "h2" : "h2c";
  }

  peerCertificate(): PeerCertificateInfo | undefined {
    const s = this.stream.session?.socket as TLSSocket | undefined;
    return s && typeof s.getPeerCertificate === "function" ? peerCertificateFromSocket(s) : undefined;
  }

  listen(listener: CallListener): void {
    this.listener = listener;
    // A second listen (the router taking over a call the server read the request of) only
    // changes who hears of it.
    if (this.reader) return;
    this.reader = new MessageReader(this.maxRequestBytes, this);
    this.stream.on("data", onStreamData);
    this.stream.on("end", onStreamEnd);
    if (this.paused) this.stream.pause();
  }

  /** @internal A request message, from the reader. */
  onMessage(m: Buffer): void {
    if (!this.done) this.listener!.message(m);
  }

  /** A request that breaks the wire rules ends the call (and tells the code serving it, as a cancel). */
  private failRead(e: unknown): void {
    const code = e instanceof GrpcWireError ? e.code : grpc.status.INTERNAL;
    const message = (e as Error).message;
    this.end(code, message);
    this.listener?.cancel({ code, message });
  }

  pause(): void {
    this.paused = true;
    if (this.reader) this.stream.pause();
  }

  resume(): void {
    this.paused = false;
    if (this.reader) this.stream.resume();
  }

  sendHeaders(metadata?: grpc.Metadata): void {
    if (this.headersSent || this.done || this.stream.destroyed) return;
    this.headersSent = true;
    const headers = metadata === undefined ? RESPONSE_HEADERS : headersFromMetadata(metadata, baseHeaders());
    this.stream.respond(headers as OutgoingHttpHeaders, RESPOND_WITH_TRAILERS);
  }

  write(message: Buffer, flushed?: () => void): boolean {
    if (this.done || this.stream.destroyed) return true;
    if (!this.headersSent) this.sendHeaders();
    // `flushed` ignores the error argument node passes (a failed write ends the call anyway).
    if (message.length <= COPY_BELOW) return this.stream.write(framedMessage(message), flushed);
    this.stream.cork();
    this.stream.write(messagePrefix(message.length));
    const ok = this.stream.write(message, flushed);
    this.stream.uncork();
    return ok;
  }

  drained(): Promise<void> {
    const stream = this.stream;
    if (this.done || stream.destroyed || !stream.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => onDrainOrClose(stream, resolve));
  }

  end(code: number, message: string, trailers?: grpc.Metadata): void {
    if (this.done) return;
    this.done = true;
    const stream = this.stream;
    if (stream.destroyed || stream.closed) return;
    // Whatever the client still sends is read and dropped, so the stream can close.
    if (this.paused || !this.reader) stream.resume();
    const status = code === 0 && !message && trailers === undefined ? OK_TRAILERS : statusHeaders(code, message, trailers);
    try {
      if (!this.headersSent) {
        // Trailers-only: one HEADERS frame with END_STREAM.
        this.headersSent = true;
        stream.respond(Object.assign(baseHeaders(), status), { endStream: true });
        return;
      }
      this.trailers = status;
      stream.end();
    } catch {
      // the client went away meanwhile
    }
  }

  reset(): void {
    this.done = true;
    if (!this.stream.destroyed && !this.stream.closed) this.stream.close(http2.constants.NGHTTP2_CANCEL);
  }

  abandon(): void {
    closeSessionIfOnly(this.stream);
  }
}

/** The trailers (or trailers-only headers) of a status. */
function statusHeaders(code: number, message: string, trailers: grpc.Metadata | undefined): Record<string, string | string[]> {
  const status: Record<string, string | string[]> = { "grpc-status": STATUS_TEXT[code] ?? String(code) };
  if (message) status["grpc-message"] = encodeGrpcMessage(message);
  return headersFromMetadata(trailers, status);
}

/**
 * "host:port" of the peer behind a session's or request's socket; "" when unknown. A
 * connection handed to node:http2 as a JavaScript stream (not a net.Socket) is wrapped by node
 * in a socket of its own (`.stream` is that stream, which may know the real address), so the
 * address is looked up one level down when needed.
 */
export function peerOf(socket: unknown): string {
  const s = socket as { remoteAddress?: string; remotePort?: number; stream?: { remoteAddress?: string; remotePort?: number } } | undefined;
  const at = s?.remoteAddress !== undefined ? s : s?.stream;
  if (!at || at.remoteAddress === undefined) return "";
  return `${at.remoteAddress}:${at.remotePort}`;
}

/** Reads the one request message of a unary or server-streaming call, then runs its handler. */
export class SingleRequest implements CallListener {
  private request: Buffer | undefined;
  private failed = false;

  constructor(
    private readonly call: ServerCall,
    private readonly method: Pick<GrpcMethod, "handle">,
  ) {}

  message(m: Buffer): void {
    if (this.request === undefined) {
      this.request = m;
      return;
    }
    this.failed = true;
    this.call.end(grpc.status.INTERNAL, `${this.call.path} takes one request message; the client sent more`);
  }

  halfClose(): void {
    if (this.failed) return;
    if (this.request === undefined) return this.call.end(grpc.status.INTERNAL, `${this.call.path} takes one request message; the client sent none`);
    this.method.handle(this.call, this.request);
  }

  cancel(): void {}
}
