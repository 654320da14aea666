// The router's port for browsers and curl: gRPC-Web and Connect requests, over HTTP/1.1 or
// HTTP/2, become ServerCalls of the same methods native gRPC calls reach (web-call.ts), with
// CORS in front (web-cors.ts). One port serves both HTTP versions: in plaintext the first
// bytes of a connection tell them apart (HTTP/2's preface "PRI * HTTP/2.0"), with TLS ALPN.
import * as http from "node:http";
import type * as http2 from "node:http2";
import * as net from "node:net";
import * as tls from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { onDrainOrClose } from "../drained.js";
import { encodeGrpcMessage, GrpcWireError, metadataFromRawHeaders, parseGrpcTimeout } from "./grpc-wire.js";
import type { GrpcMethod } from "./server.js";
import { SingleRequest, type ServerCall } from "./server-call.js";
import { WebServerCall, type WebExchange } from "./web-call.js";
import { Cors, type CorsOptions } from "./web-cors.js";
import { TurnPacer } from "./turn-pacer.js";
import { connectErrorJson, connectHttpStatus, envelope, WEB_CONTENT_TYPES, webProtocolOf, type WebProtocol } from "./web-protocol.js";

/** Request headers that are the browser's or HTTP's business, not call metadata. */
const NOT_METADATA = new Set([
  "x-grpc-web",
  "x-user-agent",
  "accept",
  "accept-language",
  "cache-control",
  "pragma",
  "keep-alive",
  "transfer-encoding",
  "upgrade",
  "proxy-connection",
  "http2-settings",
  "content-encoding",
  "dnt",
  "priority",
]);

function isMetadataHeader(name: string): boolean {
  const k = name.toLowerCase();
  return !NOT_METADATA.has(k) && !k.startsWith("sec-") && !k.startsWith("connect-") && !k.startsWith("access-control-");
}

export class WebFrontEnd {
  private cors: Cors;

  constructor(
    private readonly methodOf: (path: string) => GrpcMethod | undefined,
    cors?: CorsOptions,
  ) {
    this.cors = new Cors(cors);
  }

  /** Replaces the CORS settings; requests from now on use them. */
  setCors(options: CorsOptions | undefined): void {
    this.cors = new Cors(options);
  }

  /** An HTTP/1.1 request (node:http's `request` event). */
  readonly onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    this.handle(req.method ?? "", req.url ?? "", http1Exchange(req, res));
  };

  /** An HTTP/2 stream that is not native gRPC. */
  onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, rawHeaders: string[]): void {
    this.handle(String(headers[":method"] ?? ""), String(headers[":path"] ?? ""), http2Exchange(stream, headers, rawHeaders));
  }

  private handle(method: string, url: string, ex: WebExchange): void {
    const origin = typeof ex.headers.origin === "string" ? ex.headers.origin : undefined;
    if (method === "OPTIONS") {
      const acrh = ex.headers["access-control-request-headers"];
      const answer = this.cors.preflight(origin, typeof acrh === "string" ? acrh : undefined);
      return plain(ex, answer.status, "", answer.headers);
    }
    const cors = this.cors.responseHeaders(origin);
    const path = url.split("?")[0]!;
    const contentType = String(ex.headers["content-type"] ?? "");
    const protocol = webProtocolOf(contentType);
    if (method !== "POST")
      return plain(ex, 405, `${method} is not supported; gRPC-Web and Connect calls are POST requests\n`, { ...cors, allow: "POST, OPTIONS" });
    if (!protocol) {
      const what = contentType ? `content-type ${JSON.stringify(contentType.slice(0, 100))} is not supported` : "the request has no content-type";
      return plain(ex, 415, `${what}; this port takes application/grpc (HTTP/2) and ${WEB_CONTENT_TYPES}\n`, { ...cors, "accept-post": WEB_CONTENT_TYPES });
    }
    const fail = (code: grpc.status, message: string) => failCall(ex, protocol, cors, code, message);
    const m = this.methodOf(path);
    if (!m) return fail(grpc.status.UNIMPLEMENTED, `The server does not implement the method ${path}`);
    const kind = m.desc?.methodKind ?? (m.singleRequest ? undefined : "bidi_streaming");
    if (kind === "client_streaming" || kind === "bidi_streaming") {
      return fail(
        grpc.status.UNIMPLEMENTED,
        `${path} is a ${kind === "client_streaming" ? "client" : "bidi"}-streaming method: gRPC-Web and Connect over this router carry unary and server-streaming calls only; call it with native gRPC (application/grpc over HTTP/2)`,
      );
    }
    if (protocol.kind === "connect-unary" && kind === "server_streaming") {
      return plain(ex, 415, `${path} is a server-streaming method: send it as application/connect+proto or application/connect+json\n`, cors);
    }
    if (protocol.kind !== "grpc-web" && protocol.json && !m.desc) {
      return fail(grpc.status.UNIMPLEMENTED, `${path}: JSON needs the service's descriptors, which this server was not given; send application/proto`);
    }
    let deadline = Infinity;
    try {
      deadline = deadlineOf(ex.headers, protocol);
      checkEncoding(ex.headers, protocol);
    } catch (e) {
      return fail((e as GrpcWireError).code ?? grpc.status.INTERNAL, (e as Error).message);
    }
    const raw: string[] = [];
    for (let i = 0; i + 1 < ex.rawHeaders.length; i += 2) {
      if (isMetadataHeader(ex.rawHeaders[i]!)) raw.push(ex.rawHeaders[i]!, ex.rawHeaders[i + 1]!);
    }
    const call = new WebServerCall(ex, protocol, path, metadataFromRawHeaders(raw), deadline, m.maxRequestBytes, m.desc, cors);
    startCall(m, call);
  }
}

/** Runs `method` on `call`: reads the one request message first when the method takes one. */
function startCall(method: GrpcMethod, call: ServerCall): void {
  if (!method.singleRequest) return method.handle(call, undefined);
  call.listen(new SingleRequest(call, method));
}

function deadlineOf(headers: http.IncomingHttpHeaders, protocol: WebProtocol): number {
  if (protocol.kind === "grpc-web") {
    const t = headers["grpc-timeout"];
    return typeof t === "string" ? Date.now() + parseGrpcTimeout(t) : Infinity;
  }
  const t = headers["connect-timeout-ms"];
  if (typeof t !== "string") return Infinity;
  if (!/^\d{1,10}$/.test(t)) throw new GrpcWireError(grpc.status.INVALID_ARGUMENT, `malformed connect-timeout-ms ${JSON.stringify(t.slice(0, 20))}`);
  return Date.now() + Number(t);
}

function checkEncoding(headers: http.IncomingHttpHeaders, protocol: WebProtocol): void {
  const name = protocol.kind === "grpc-web" ? "grpc-encoding" : protocol.kind === "connect-stream" ? "connect-content-encoding" : "content-encoding";
  const v = headers[name];
  if (v !== undefined && v !== "identity")
    throw new GrpcWireError(grpc.status.UNIMPLEMENTED, `${name} ${JSON.stringify(String(v).slice(0, 40))} is not supported (identity only)`);
}

/** A call that fails before it starts, in its protocol's form. */
function failCall(ex: WebExchange, protocol: WebProtocol, cors: Record<string, string>, code: grpc.status, message: string): void {
  ex.body.resume();
  try {
    if (protocol.kind === "grpc-web") {
      // Trailers-only: the status in the headers, no body.
      ex.respond(200, {
        ...cors,
        "content-type": protocol.contentType,
        "grpc-status": String(code),
        "grpc-message": encodeGrpcMessage(message),
        "content-length": "0",
      });
      ex.end();
    } else if (protocol.kind === "connect-stream") {
      ex.respond(200, { ...cors, "content-type": protocol.contentType });
      ex.end(envelope(0x02, Buffer.from(JSON.stringify({ error: connectErrorJson(code, message, undefined) }))));
    } else {
      const body = JSON.stringify(connectErrorJson(code, message, undefined));
      ex.respond(connectHttpStatus(code), { ...cors, "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) });
      ex.end(body);
    }
  } catch {
    // gone
  }
}

function plain(ex: WebExchange, status: number, text: string, headers: Record<string, string>): void {
  ex.body.resume();
  try {
    ex.respond(status, { ...headers, ...(text ? { "content-type": "text/plain; charset=utf-8" } : {}), "content-length": String(Buffer.byteLength(text)) });
    ex.end(text);
  } catch {
    // gone
  }
}

function http1Exchange(req: http.IncomingMessage, res: http.ServerResponse): WebExchange {
  return {
    headers: req.headers,
    rawHeaders: req.rawHeaders,
    body: req,
    socket: req.socket,
    respond: (status, headers) => void res.writeHead(status, headers),
    write: (chunk, cb) => res.write(chunk, cb ? () => cb() : undefined),
    end: (chunk) => void (chunk === undefined ? res.end() : res.end(chunk)),
    get needDrain() {
      return res.writableNeedDrain;
    },
    onDrainOrClose: (fn) => onDrainOrClose(res, fn),
    onClose: (fn) => void res.once("close", () => fn(res.writableFinished)),
    get closed() {
      return res.destroyed || res.writableEnded;
    },
  };
}

function http2Exchange(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, rawHeaders: string[]): WebExchange {
  stream.on("error", () => {}); // a reset stream is a cancel; 'close' follows
  return {
    headers,
    rawHeaders,
    body: stream,
    socket: stream.session?.socket as net.Socket | undefined,
    respond: (status, h) => {
      const out: Record<string, unknown> = { ":status": status };
      for (const [k, v] of Object.entries(h)) if (k !== "connection" && k !== "transfer-encoding") out[k] = v;
      stream.respond(out as http2.OutgoingHttpHeaders);
    },
    write: (chunk, cb) => stream.write(chunk, cb ? () => cb() : undefined),
    end: (chunk) => void (chunk === undefined ? stream.end() : stream.end(chunk)),
    get needDrain() {
      return stream.writableNeedDrain;
    },
    onDrainOrClose: (fn) => onDrainOrClose(stream, fn),
    onClose: (fn) => void stream.once("close", () => fn(stream.writableFinished && stream.rstCode === 0)),
    get closed() {
      return stream.destroyed || stream.closed || stream.writableEnded;
    },
  };
}

/** HTTP/2's connection preface starts "PRI * HTTP/2.0"; no HTTP/1 method is "PRI". */
const PREFACE = Buffer.from("PRI * HTTP/2.0");

/**
 * A plaintext listener that hands each connection to `h2` (h2c: prior knowledge) or to `h1`
 * by its first bytes. Both steps that a burst of new connections would crowd into one
 * event-loop turn go through a TurnPacer (turn-pacer.ts): starting to read an accepted
 * connection (accepted sockets stay paused, `pauseOnConnect`, until their turn), and handing
 * a connection whose first bytes came to its HTTP server. The second matters most: instances
 * that connect in a burst send their first bytes in a burst too (often a second later, when
 * their own process gets to it), and setting up an HTTP/2 session and its Register stream is
 * most of what a new instance costs the router.
 */
export function createSniffingServer(h2: http2.Http2Server, h1: http.Server, firstBytesTimeoutMs = 10_000): net.Server {
  const pacer = new TurnPacer();
  const admit = (socket: net.Socket) =>
    pacer.run(() => {
      if (socket.destroyed) return;
      sniff(socket, h2, h1, firstBytesTimeoutMs, pacer);
      socket.resume(); // paused explicitly: a 'data' listener alone would not start reading
    });
  return net.createServer({ pauseOnConnect: true }, admit);
}

/**
 * A TLS listener that hands each connection to `h2` or `h1` by the protocol ALPN chose. Like
 * createSniffingServer, it paces what a burst of new connections would crowd into one
 * event-loop turn (turn-pacer.ts): accepted sockets stay paused until their turn to start the
 * handshake (the server's RSA signature alone is a quarter of a millisecond of CPU: thousands
 * at once would hold every established connection), and a connection whose handshake is done waits for
 * its turn to get its HTTP/2 session. The TLS itself is node's tls.Server, fed the paused
 * sockets: its options, handshake timeout and client-certificate checks apply as before.
 */
export function createAlpnServer(options: tls.TlsOptions, h2: http2.Http2Server, h1: http.Server): net.Server {
  const handshakes = new TurnPacer();
  const sessions = new TurnPacer();
  const secure = tls.createServer({ ...options, ALPNProtocols: ["h2", "http/1.1"] }, (socket) =>
    inItsTurn(sessions, socket, () => (socket.alpnProtocol === "h2" ? h2 : h1).emit("connection", socket)),
  );
  // A failed handshake is that connection's problem only.
  secure.on("tlsClientError", () => {});
  const admit = (socket: net.Socket) =>
    inItsTurn(handshakes, socket, () => {
      secure.emit("connection", socket);
      socket.resume(); // paused since accept (pauseOnConnect)
    });
  return net.createServer({ pauseOnConnect: true }, admit);
}

/** Runs `start` in the socket's turn of `pacer`, unless it is gone by then; until then a reset destroys it rather than crash the router. */
function inItsTurn(pacer: TurnPacer, socket: net.Socket, start: () => void): void {
  const onError = () => socket.destroy();
  socket.on("error", onError);
  pacer.run(() => {
    socket.off("error", onError);
    if (!socket.destroyed) start();
  });
}

function sniff(socket: net.Socket, h2: http2.Http2Server, h1: http.Server, timeoutMs: number, pacer: TurnPacer): void {
  let seen: Buffer = Buffer.alloc(0);
  // Clients of both versions speak first: a connection that does not say which it is in
  // time is closed, so silent connections cannot pile up.
  const timer = setTimeout(() => socket.destroy(), timeoutMs);
  timer.unref();
  const onData = (chunk: Buffer) => {
    seen = seen.length ? Buffer.concat([seen, chunk]) : chunk;
    const n = Math.min(seen.length, PREFACE.length);
    const isH2 = seen.subarray(0, n).equals(PREFACE.subarray(0, n));
    // Undecided while what came so far is a prefix of the preface (at most a few bytes).
    if (isH2 && n < PREFACE.length) return;
    clearTimeout(timer);
    socket.off("data", onData);
    socket.pause();
    socket.unshift(seen);
    // Paused until its turn: what it sent so far waits in its buffer (and a reset meanwhile
    // still goes to onError).
    pacer.run(() => {
      if (socket.destroyed) return;
      socket.off("error", onError);
      if (isH2) {
        // The socket itself, not a JS stream around it: node:http2 then reads its handle
        // natively, and feeds what is already buffered (the bytes read here) to the session
        // first (Node ≥ 15: "bytes already in buffer"). A wrapper would cost every h2c
        // connection a JS stream (memory, and a copy of every chunk).
        h2.emit("connection", socket);
        return;
      }
      h1.emit("connection", socket);
      socket.resume();
    });
  };
  const onError = () => {
    clearTimeout(timer);
    socket.destroy();
  };
  socket.on("error", onError);
  socket.on("data", onData);
}
