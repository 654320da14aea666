// A gRPC server on node:http2 (h2c, or TLS/mTLS with http2.createSecureServer) for the
// router: every method is a handler over an Http2ServerCall (bytes in, bytes out); the
// services off the hot path (health, reflection, Admin) add protobuf-es (de)serialization
// with typed.ts.
//
// `onStream` is the whole server: attach it to an http2 server of your own
// (`http2Server.on("stream", grpcServer.onStream)`) instead of calling `listen`.
import * as http from "node:http";
import * as http2 from "node:http2";
import type * as net from "node:net";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { DescMethod } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { callMetadata } from "./call-metadata.js";
import { GrpcWireError, encodeGrpcMessage, parseGrpcTimeout } from "./grpc-wire.js";
import { Http2ServerCall, SingleRequest, type ServerCall } from "./server-call.js";
import { SessionKeepalive } from "./session-keepalive.js";
import { trackStream } from "./session-streams.js";
// grpc-web: browsers' and curl's protocols on the same port (web-server.ts)
import type { CorsOptions } from "./web-cors.js";
import { createAlpnServer, createSniffingServer, WebFrontEnd } from "./web-server.js";
import { WebSocketFrontEnd } from "./websocket-call.js";
import { DrainingSet, waitDrained } from "../drained.js";

/** A method served on the hot path. */
export interface GrpcMethod {
  /** The client sends exactly one message (unary, server streaming): it is read before `handle`. */
  readonly singleRequest: boolean;
  /** Largest request message accepted (RESOURCE_EXHAUSTED above it). */
  readonly maxRequestBytes: number;
  handle(call: ServerCall, request: Buffer | undefined): void;
  /** The method's descriptor: its kind, and for Connect JSON its message types (grpc-web). */
  readonly desc?: DescMethod;
  /** Served over WebSocket too, on an HTTP/1.1 Upgrade to its path (websocket-wire.ts): the Register streams. */
  readonly websocket?: boolean;
  /** The handler never reads the call's metadata (Register streams): none is kept per call (call-metadata.ts). */
  readonly ignoresMetadata?: boolean;
}

/** grpc-js server credentials (ServerCredentials.createSsl / loadServerCredentials) or node's TLS options. */
export type ServerTls = grpc.ServerCredentials | http2.SecureServerOptions;

export interface GrpcServerOptions {
  /** Ping each connection this often to find dead peers. Default 2 h (as gRPC servers do). */
  keepaliveTimeMs?: number;
  /** A connection that does not answer a ping within this is closed. Default 20 s. */
  keepaliveTimeoutMs?: number;
  /** CORS of the gRPC-Web and Connect calls this server takes (web-cors.ts); default: no other origin. */
  cors?: CorsOptions;
  /** Plaintext: a connection whose first bytes do not tell HTTP/2 from HTTP/1.1 within this is closed. Default 10 s. */
  firstBytesTimeoutMs?: number;
  /**
   * Register streams over WebSocket (HTTP/1.1 Upgrade on the same port, for paths that carry
   * HTTP/1.1 only; websocket-wire.ts). Default true; false answers every Upgrade with 404.
   */
  websocket?: boolean;
}

type StreamListener = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number, rawHeaders: string[]) => void;

export class GrpcServer {
  private readonly methods = new Map<string, GrpcMethod>();
  private server: net.Server | undefined;
  private http1: http.Server | undefined;
  private readonly sessions = new DrainingSet<http2.ServerHttp2Session>();
  /** Every accepted TCP connection: close() ends those a vanished peer would hold open. */
  private readonly sockets = new Set<Socket>();
  /** Pings every connection now and then, from one timer (session-keepalive.ts). */
  private readonly keepalive: SessionKeepalive;
  private closed = false;

  constructor(options: GrpcServerOptions = {}) {
    this.keepalive = new SessionKeepalive(options.keepaliveTimeMs ?? 2 * 60 * 60 * 1000, options.keepaliveTimeoutMs ?? 20_000);
    this.web = new WebFrontEnd((path) => this.methods.get(path), options.cors);
    this.firstBytesTimeoutMs = options.firstBytesTimeoutMs ?? 10_000;
    this.websocket = new WebSocketFrontEnd((path) => this.methods.get(path), options.websocket ?? true);
  }

  private readonly websocket: WebSocketFrontEnd;

  /** Register streams over WebSocket: the `upgrade` listener of a node:http(s) server of your own. */
  get onUpgrade(): (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void {
    return this.websocket.onUpgrade;
  }

  // grpc-web: gRPC-Web and Connect (HTTP/1.1 and HTTP/2) reach the same methods.
  private readonly web: WebFrontEnd;
  private readonly firstBytesTimeoutMs: number;

  /** Replaces the CORS settings of gRPC-Web and Connect calls (hot reload). */
  setCors(options: CorsOptions | undefined): void {
    this.web.setCors(options);
  }

  /** gRPC-Web and Connect over HTTP/1.1: the `request` listener of a node:http(s) server of your own. */
  get onRequest(): (req: http.IncomingMessage, res: http.ServerResponse) => void {
    return this.web.onRequest;
  }

  /** Serves `path` ("/pkg.Service/Method") with `method`; replaces what served it before. */
  add(path: string, method: GrpcMethod): void {
    this.methods.set(path, method);
  }

  /** What serves `path`, if anything (to drive a method without a socket, e.g. in a test). */
  lookup(path: string): GrpcMethod | undefined {
    return this.methods.get(path);
  }

  /** Stops serving `path` (new calls get UNIMPLEMENTED; calls in flight go on). */
  remove(path: string): void {
    this.methods.delete(path);
  }

  /** Handles one HTTP/2 stream: the `stream` event listener of an http2 server. */
  readonly onStream: StreamListener = (stream, headers, _flags, rawHeaders) => {
    // So a dead peer's connection can be closed when its last stream is given up (session-streams.ts).
    trackStream(stream);
    const path = headers[":path"] ?? "";
    const contentType = headers["content-type"] ?? "";
    if (headers[":method"] !== "POST" || !/^application\/grpc(\+proto)?(;|$)/.test(contentType)) {
      // Not native gRPC: gRPC-Web, Connect, a CORS preflight, or HTTP's answer (grpc-web).
      return this.web.onStream(stream, headers, rawHeaders);
    }
    const method = this.methods.get(path);
    if (!method) {
      return trailersOnly(stream, grpc.status.UNIMPLEMENTED, `The server does not implement the method ${path}`);
    }
    const encoding = headers["grpc-encoding"];
    if (encoding !== undefined && encoding !== "identity") {
      return trailersOnly(stream, grpc.status.UNIMPLEMENTED, `grpc-encoding ${JSON.stringify(encoding)} is not supported (grpc-accept-encoding: identity)`);
    }
    let deadline = Infinity;
    const timeout = headers["grpc-timeout"];
    if (typeof timeout === "string") {
      try {
        deadline = Date.now() + parseGrpcTimeout(timeout);
      } catch (e) {
        return trailersOnly(stream, (e as GrpcWireError).code ?? grpc.status.INTERNAL, (e as Error).message);
      }
    }
    const call = new Http2ServerCall(stream, path, callMetadata(method, rawHeaders), deadline, method.maxRequestBytes);
    if (!method.singleRequest) {
      method.handle(call, undefined);
      return;
    }
    // One request message, then the client's half-close, before the handler runs.
    call.listen(new SingleRequest(call, method));
  };

  /** Listens on "host:port" (port 0 picks one); plaintext (h2c) unless `tls` is given. */
  async listen(address: string, tls?: ServerTls): Promise<{ port: number; address: string }> {
    if (this.server) throw new Error("this server is listening already");
    const secure = secureOptions(tls);
    const settings: http2.ServerOptions = {
      // Per-call windows bound what the router holds; node's default (10 MiB) would reset
      // streams of a busy connection with ENHANCE_YOUR_CALM.
      maxSessionMemory: Number.MAX_SAFE_INTEGER,
    };
    // One port, two HTTP versions (grpc-web): the listener hands each connection to the
    // HTTP/2 server (gRPC, and gRPC-Web/Connect over HTTP/2) or to the HTTP/1.1 one.
    const h2 = http2.createServer(settings);
    const h1 = http.createServer(this.web.onRequest);
    h1.on("upgrade", this.websocket.onUpgrade);
    this.http1 = h1;
    const server = secure ? createAlpnServer(secure, h2, h1) : createSniffingServer(h2, h1, this.firstBytesTimeoutMs);
    this.server = server;
    h2.on("stream", this.onStream);
    h2.on("session", (session: http2.ServerHttp2Session) => this.onSession(session));
    // Small gRPC messages must not wait for Nagle's algorithm.
    server.on("connection", (socket: Socket) => {
      socket.setNoDelay(true);
      this.sockets.add(socket);
      socket.once("close", () => this.sockets.delete(socket));
    });
    // A non-HTTP/2 client (or a failed TLS handshake: createAlpnServer) is that connection's problem only.
    h2.on("sessionError", () => {});
    const i = address.lastIndexOf(":");
    const host = address.slice(0, i).replace(/^\[(.*)\]$/, "$1");
    const wanted = Number(address.slice(i + 1));
    if (i < 0 || !Number.isInteger(wanted)) throw new Error(`listen: ${JSON.stringify(address)} is not host:port`);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      // A deep accept queue: thousands of instances reconnect at once when a router restarts,
      // and a full queue drops their SYNs (retried after 1, 2, 4… s). The kernel caps it at
      // net.core.somaxconn; node's default is 511.
      server.listen({ port: wanted, host, backlog: 4096 }, () => {
        server.off("error", reject);
        resolve();
      });
    });
    const port = (server.address() as { port: number }).port;
    return { port, address: `${address.slice(0, i)}:${port}` };
  }

  private onSession(session: http2.ServerHttp2Session): void {
    if (this.closed) {
      session.close();
      return;
    }
    this.sessions.add(session);
    this.keepalive.add(session);
    // Listeners shared by every session: no closures per connection (a router holds thousands).
    session.on("close", this.onSessionClose);
    session.on("error", ignore);
  }

  private readonly onSessionClose: (this: http2.ServerHttp2Session) => void = (() => {
    const server = this;
    return function (this: http2.ServerHttp2Session) {
      server.keepalive.delete(this);
      server.sessions.delete(this);
    };
  })();

  /**
   * Stops accepting connections and sends GOAWAY on every connection: calls in flight go
   * on, new ones go elsewhere. After `graceMs` the connections still open are closed.
   */
  async close(graceMs = 1000): Promise<void> {
    this.closed = true;
    this.websocket.close();
    const server = this.server;
    const closedServer = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    for (const s of this.sessions) s.close();
    this.http1?.closeIdleConnections();
    await waitDrained([this.sessions.drained, this.websocket.open.drained], () => this.sessions.size === 0 && this.websocket.open.size === 0, graceMs);
    for (const s of [...this.sessions]) s.destroy();
    this.keepalive.close();
    this.websocket.terminate();
    this.http1?.closeAllConnections();
    // A connection whose peer vanished (a network change, a dead NAT flow) may outlive its
    // session: its FIN is never answered, and server.close() would wait for it forever.
    for (const socket of this.sockets) socket.destroy();
    await closedServer;
  }

  /** Connections open now. */
  get connections(): number {
    return this.sessions.size;
  }
}

function secureOptions(tls: ServerTls | undefined): http2.SecureServerOptions | undefined {
  if (!tls) return undefined;
  if (tls instanceof grpc.ServerCredentials) {
    if (!tls._isSecure()) return undefined;
    return { ...tls._getConstructorOptions(), ...tls._getSecureContextOptions() } as http2.SecureServerOptions;
  }
  return tls;
}

function ignore(): void {}

/** A status with no response: one HEADERS frame carrying the status (and END_STREAM). */
export function trailersOnly(stream: http2.ServerHttp2Stream, code: grpc.status, message: string): void {
  try {
    stream.on("error", () => {});
    stream.respond(
      {
        ":status": 200,
        "content-type": "application/grpc",
        "grpc-accept-encoding": "identity",
        "grpc-status": String(code),
        "grpc-message": encodeGrpcMessage(message),
      },
      { endStream: true },
    );
    stream.resume();
  } catch {
    // gone
  }
}
