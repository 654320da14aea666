// The router's WebSocket endpoint (websocket-wire.ts): an HTTP/1.1 Upgrade on the same port
// (plaintext connections sniffed as HTTP/1.1, TLS connections that chose `http/1.1` by ALPN)
// becomes a ServerCall of the method at its path, so the Register stream's code runs
// unchanged over it: the same flow control (pause/resume stop reading the socket), byte
// meter (writes counted until the socket took them), limits and identity (the Upgrade's
// headers are the call's metadata; the TLS socket carries the mTLS peer certificate).
// Only methods that ask for it (`GrpcMethod.websocket`: the Register streams) are served.
import type * as http from "node:http";
import type { Duplex } from "node:stream";
import type { TLSSocket } from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { WebSocket, WebSocketServer, type RawData } from "ws";
import { peerCertificateFromSocket, type PeerCertificateInfo } from "../peer-certificate.js";
import { closeOfStatus, isUpgradeMetadataHeader, WEBSOCKET_PROTOCOL } from "../websocket-wire.js";
import { callMetadata } from "./call-metadata.js";
import { GrpcWireError, headersFromMetadata, parseGrpcTimeout } from "./grpc-wire.js";
import type { CallListener, CallTransport, ServerCall } from "./server-call.js";
import { peerOf } from "./server-call.js";
import { ABANDON_GRACE_MS } from "./session-streams.js";
import { DrainingSet, onDrainOrClose } from "../drained.js";
import type { GrpcMethod } from "./server.js";

export class WebSocketServerCall implements ServerCall {
  private listener: CallListener | undefined;
  private done = false;
  private paused = false;

  constructor(
    private readonly ws: WebSocket,
    private readonly socket: Duplex,
    readonly path: string,
    /** undefined when the client sent none or the method ignores it (call-metadata.ts): made empty if read. */
    private md: grpc.Metadata | undefined,
    readonly deadline: number,
    /** The largest message ws accepts (its maxPayload), for the reason an oversized one gives. */
    private readonly maxBytes: number,
  ) {
    // A frame ws refuses (too big, not WebSocket) is an error, then a close: the call hears why.
    let refused: { code: number; message: string } | undefined;
    ws.on("error", (e: Error & { code?: string }) => {
      refused ??=
        e.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH"
          ? { code: grpc.status.RESOURCE_EXHAUSTED, message: `a WebSocket message over the limit of ${this.maxBytes} bytes` }
          : { code: grpc.status.INTERNAL, message: `WebSocket: ${e.message}` };
    });
    ws.on("close", (code) => {
      if (this.done) return;
      this.done = true;
      // The client's normal close is its half-close: it has sent all it will.
      if (refused) this.listener?.cancel(refused);
      else if (code === 1000) this.listener?.halfClose();
      else this.listener?.cancel();
    });
  }

  get ended(): boolean {
    return this.done;
  }

  get metadata(): grpc.Metadata {
    return (this.md ??= new grpc.Metadata());
  }

  get peer(): string {
    return peerOf(this.socket);
  }

  get transport(): CallTransport {
    return (this.socket as Partial<TLSSocket>).encrypted === true ? "wss" : "ws";
  }

  peerCertificate(): PeerCertificateInfo | undefined {
    const s = this.socket as TLSSocket;
    return typeof s.getPeerCertificate === "function" ? peerCertificateFromSocket(s) : undefined;
  }

  listen(listener: CallListener): void {
    const first = !this.listener;
    this.listener = listener;
    if (!first) return;
    this.ws.on("message", (data: RawData, isBinary: boolean) => {
      if (this.done) return;
      if (!isBinary) {
        const message = "a text WebSocket message: gRPC messages travel as binary messages";
        this.end(grpc.status.INTERNAL, message);
        this.listener!.cancel({ code: grpc.status.INTERNAL, message });
        return;
      }
      this.listener!.message(data as Buffer);
    });
    if (this.paused) this.ws.pause();
  }

  pause(): void {
    this.paused = true;
    if (this.listener) this.ws.pause();
  }

  resume(): void {
    this.paused = false;
    if (this.listener) this.ws.resume();
  }

  sendHeaders(): void {
    // The 101 answer was the headers; metadata sent later has no place on this transport.
  }

  write(message: Buffer, flushed?: () => void): boolean {
    if (this.done || this.ws.readyState !== WebSocket.OPEN) return true;
    this.ws.send(message, { binary: true }, flushed ? () => flushed() : undefined);
    return !this.socket.writableNeedDrain;
  }

  drained(): Promise<void> {
    const s = this.socket;
    if (this.done || s.destroyed || !s.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => onDrainOrClose(s, resolve));
  }

  end(code: number, message: string, trailers?: grpc.Metadata): void {
    if (this.done) return;
    this.done = true;
    // Whatever the client still sends is read and dropped, so the close handshake completes.
    if (this.paused) this.ws.resume();
    const close = closeOfStatus(code, message);
    try {
      const fields = headersFromMetadata(trailers, {});
      if (Object.keys(fields).length > 0 && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(fields), { binary: false });
      this.ws.close(close.code, close.reason);
    } catch {
      // gone
    }
  }

  reset(): void {
    this.done = true;
    this.ws.terminate();
  }

  abandon(): void {
    // One call per WebSocket connection: a dead peer never answers the close handshake, so
    // the connection goes after a short grace instead of ws's 30 s close timeout.
    const ws = this.ws;
    if (ws.readyState === WebSocket.CLOSED) return;
    const timer = setTimeout(() => ws.terminate(), ABANDON_GRACE_MS);
    timer.unref();
    ws.once("close", () => clearTimeout(timer));
  }
}

/** Answers an Upgrade the server does not take, with an HTTP status and a line saying why. */
function refuseUpgrade(socket: Duplex, status: number, reason: string, text: string): void {
  const body = `${text}\n`;
  try {
    // Closed once the answer is out: a client that does not close its side holds nothing.
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      () => socket.destroy(),
    );
  } catch {
    socket.destroy();
  }
}

/**
 * Hands a request node took for an upgrade back to `server` as a plain one: its head is
 * written out again without the Upgrade (and Connection's upgrade tokens, HTTP2-Settings),
 * put back in front of the bytes that followed it, and the connection parsed anew.
 */
function serveWithoutUpgrade(server: http.Server, req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
  const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`];
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!;
    const key = name.toLowerCase();
    if (key === "upgrade" || key === "http2-settings") continue;
    let value = req.rawHeaders[i + 1]!;
    if (key === "connection") {
      value = value
        .split(",")
        .map((t) => t.trim())
        .filter((t) => !/^(upgrade|http2-settings)$/i.test(t))
        .join(", ");
      if (!value) continue;
    }
    lines.push(`${name}: ${value}`);
  }
  socket.unshift(Buffer.concat([Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1"), head]));
  server.emit("connection", socket);
}

/**
 * The `upgrade` listener of the router's HTTP/1.1 server: WebSocket Upgrades to methods with
 * `websocket` set become WebSocketServerCalls; anything else is answered with an HTTP error.
 */
export class WebSocketFrontEnd {
  /** One ws server per message limit (its maxPayload); they hold no sockets of their own. */
  private readonly servers = new Map<number, WebSocketServer>();
  readonly open = new DrainingSet<WebSocket>();
  closed = false;

  constructor(
    private readonly methodOf: (path: string) => GrpcMethod | undefined,
    private readonly enabled: boolean,
  ) {}

  /**
   * The `upgrade` listener of an http.Server (called with the server as `this`). Node hands
   * every request with an Upgrade header here once anyone listens; those that do not ask for
   * WebSocket (curl --http2's `Upgrade: h2c` on a Connect call) are served as the plain
   * requests they also are, as they were before this listener existed.
   */
  readonly onUpgrade = ((front: WebSocketFrontEnd) =>
    function (this: http.Server, req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
      front.upgrade(this, req, socket, head);
    })(this);

  private upgrade(server: http.Server, req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on("error", () => {});
    const path = (req.url ?? "").split("?")[0]!;
    if (String(req.headers.upgrade ?? "").toLowerCase() !== "websocket") return serveWithoutUpgrade(server, req, socket, head);
    if (!this.enabled) return refuseUpgrade(socket, 404, "Not Found", "this router does not take WebSocket connections (serve --no-websocket)");
    if (this.closed) return refuseUpgrade(socket, 503, "Service Unavailable", "the router is shutting down");
    // security: bridges send no Origin; a browser always does, and a page must not register instances.
    if (req.headers.origin !== undefined)
      return refuseUpgrade(socket, 403, "Forbidden", "WebSocket connections from browsers (with an Origin) are not accepted");
    const offered = String(req.headers["sec-websocket-protocol"] ?? "")
      .split(",")
      .map((p) => p.trim());
    if (!offered.includes(WEBSOCKET_PROTOCOL)) return refuseUpgrade(socket, 400, "Bad Request", `the WebSocket subprotocol ${WEBSOCKET_PROTOCOL} is required`);
    const method = this.methodOf(path);
    if (!method?.websocket) return refuseUpgrade(socket, 404, "Not Found", `no WebSocket endpoint at ${path}: only Register streams are served over WebSocket`);
    let deadline = Infinity;
    const timeout = req.headers["grpc-timeout"];
    if (typeof timeout === "string") {
      try {
        deadline = Date.now() + parseGrpcTimeout(timeout);
      } catch (e) {
        return refuseUpgrade(socket, 400, "Bad Request", (e as GrpcWireError).message);
      }
    }
    const raw: string[] = [];
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
      if (isUpgradeMetadataHeader(req.rawHeaders[i]!)) raw.push(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
    }
    const metadata = callMetadata(method, raw);
    this.serverFor(method.maxRequestBytes).handleUpgrade(req, socket, head, (ws) => {
      if (this.closed) return void ws.close(closeOfStatus(grpc.status.UNAVAILABLE, "the router is shutting down").code);
      this.open.add(ws);
      ws.once("close", () => this.open.delete(ws));
      method.handle(new WebSocketServerCall(ws, socket, path, metadata, deadline, method.maxRequestBytes), undefined);
    });
  }

  private serverFor(maxPayload: number): WebSocketServer {
    let s = this.servers.get(maxPayload);
    if (!s) {
      s = new WebSocketServer({
        noServer: true,
        clientTracking: false,
        maxPayload,
        // Compression would cost CPU per message and open the door to decompression bombs.
        perMessageDeflate: false,
        handleProtocols: () => WEBSOCKET_PROTOCOL,
      });
      this.servers.set(maxPayload, s);
    }
    return s;
  }

  /** Stops taking Upgrades; after close(), open connections are terminated by `terminate()`. */
  close(): void {
    this.closed = true;
  }

  terminate(): void {
    for (const ws of this.open) ws.terminate();
    this.open.clear();
  }
}
