// The bridge's side of the Register stream over WebSocket (websocket-wire.ts): one WebSocket
// connection per Register stream, dialled the way Http2Channel dials (TCP or an HTTP CONNECT
// proxy, then TLS with the same grpc-js credentials) except that TLS offers ALPN `http/1.1`,
// which is what a proxy that strips HTTP/2 speaks and what makes the router hand the
// connection to its HTTP/1.1 side.
import type { Socket } from "node:net";
import * as tls from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { WebSocket, type RawData } from "ws";
import { isTransportKey } from "../metadata.js";
import { statusOfClose, WEBSOCKET_PROTOCOL } from "../websocket-wire.js";
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DialError,
  dialSocket,
  dialTarget,
  secureConnector,
  withTimeout,
  type DialTarget,
  type Http2ChannelOptions,
  type SecureConnector,
} from "./http2-channel.js";
import type { ProxyConfig } from "./proxy.js";

export interface WebSocketCallListener {
  onMessage(message: Buffer): void;
  /** Called exactly once, last; `metadata` holds the trailers the router sent, if any. */
  onStatus(status: grpc.StatusObject): void;
}

/** One call (a Register stream) on its own WebSocket connection. */
export class WebSocketClientStream {
  private reported = false;
  private trailers: grpc.Metadata | undefined;

  constructor(
    private readonly ws: WebSocket,
    private readonly listener: WebSocketCallListener,
  ) {
    ws.on("message", (data: RawData, isBinary: boolean) => {
      if (this.reported) return;
      // The one text message: the status's trailers, just before the close (websocket-wire.ts).
      if (!isBinary) {
        if (this.trailers) return this.fail(grpc.status.INTERNAL, "the router sent a second text WebSocket message");
        try {
          const fields = JSON.parse(data.toString()) as Record<string, string | string[]>;
          if (fields === null || typeof fields !== "object" || Array.isArray(fields)) throw new Error("not an object");
          this.trailers = grpc.Metadata.fromHttp2Headers(fields);
        } catch (e) {
          this.fail(grpc.status.INTERNAL, `the router sent trailers that are not a JSON object of fields: ${(e as Error).message}`);
        }
        return;
      }
      listener.onMessage(data as Buffer);
    });
    ws.on("error", () => {}); // 'close' follows
    ws.on("close", (code: number, reason: Buffer) => this.report(statusOfClose(code, reason.toString())));
  }

  /** Sends one message; false while the socket's buffer is full. */
  write(message: Uint8Array): boolean {
    if (this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(message, { binary: true });
    return this.ws.bufferedAmount < 1024 * 1024;
  }

  /** Half-close: a normal close (the router reads it as the end of this side's messages). */
  end(): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000);
  }

  /** Ends the call from this side now. */
  cancel(): void {
    this.fail(grpc.status.CANCELLED, "Cancelled on client");
  }

  private fail(code: number, details: string): void {
    this.report({ code, details });
    this.ws.terminate();
  }

  private report(status: { code: number; details: string }): void {
    if (this.reported) return;
    this.reported = true;
    this.listener.onStatus({ ...status, metadata: this.trailers ?? new grpc.Metadata() });
  }
}

export class WebSocketChannel {
  private readonly target: DialTarget;
  readonly secure: boolean;
  readonly proxy: ProxyConfig | undefined;
  private readonly tlsOptions: tls.ConnectionOptions | undefined;
  private readonly open = new Set<WebSocket>();
  private closed = false;

  constructor(
    readonly address: string,
    private readonly options: Http2ChannelOptions = {},
  ) {
    this.target = dialTarget(address, options);
    this.secure = this.target.secure;
    this.proxy = this.target.proxy;
    if (this.secure) {
      // grpc-js offers ALPN h2 only; the same TLS settings (CA, client certificate, server
      // name, checkServerIdentity) are used with http/1.1 instead.
      const connector = secureConnector(this.target, options) as SecureConnector & { connectionOptions?: tls.ConnectionOptions };
      this.tlsOptions = connector.connectionOptions;
      connector.destroy();
    }
  }

  /** Opens `path` as a WebSocket call with `metadata` as the Upgrade's headers. */
  async call(path: string, metadata: grpc.Metadata, listener: WebSocketCallListener): Promise<WebSocketClientStream> {
    if (this.closed) throw new DialError("channel closed");
    if (this.secure && !this.tlsOptions) {
      throw new DialError(`Failed to connect to ${this.address}: these TLS credentials cannot be used over WebSocket (use grpc.credentials.createSsl)`);
    }
    const timeoutMs = this.options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const socket = await dialSocket(this.target, timeoutMs, this.options.localAddress);
    socket.setNoDelay(true);
    let connected: Socket = socket;
    if (this.tlsOptions) {
      try {
        connected = await withTimeout(
          tlsHandshake(socket, this.tlsOptions),
          timeoutMs,
          `TLS handshake with ${this.address} did not finish within ${timeoutMs} ms`,
        );
      } catch (e) {
        socket.destroy();
        throw new DialError(`Failed to connect to ${this.address}: ${(e as Error).message}`);
      }
    }
    const headers: Record<string, string | string[]> = { "user-agent": "grpcrouter-bridge" };
    const md = metadata.toHttp2Headers();
    for (const key of Object.keys(md)) {
      const v = md[key];
      if (!isTransportKey(key) && v !== undefined) headers[key] = Array.isArray(v) ? v.map(String) : String(v);
    }
    const ws = new WebSocket(`ws://${this.target.authority}${path}`, [WEBSOCKET_PROTOCOL], {
      // A socket from a CONNECT proxy comes paused; it flows once the HTTP client listens.
      createConnection: () => {
        setImmediate(() => connected.resume());
        return connected;
      },
      headers,
      perMessageDeflate: false,
      handshakeTimeout: timeoutMs,
      followRedirects: false,
    });
    this.open.add(ws);
    ws.once("close", () => this.open.delete(ws));
    await new Promise<void>((resolve, reject) => {
      const fail = (message: string) => {
        this.open.delete(ws);
        ws.removeAllListeners();
        ws.on("error", () => {});
        ws.terminate();
        reject(new DialError(`Failed to connect to ${this.address} over WebSocket: ${message}`));
      };
      ws.once("open", () => {
        ws.removeAllListeners("error");
        ws.removeAllListeners("unexpected-response");
        resolve();
      });
      ws.once("error", (e: Error) => fail(e.message));
      ws.once("unexpected-response", (_req, res) => {
        // The body says why (a proxy's error page, or the router's one line): its start only.
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          if (body.length < 200) body += chunk;
        });
        res.on("error", () => {});
        const done = () => fail(`HTTP ${res.statusCode} ${res.statusMessage ?? ""}`.trimEnd() + (body.trim() ? `: ${body.trim().slice(0, 200)}` : ""));
        res.once("end", done);
        res.once("close", done);
      });
    });
    if (this.closed) {
      ws.terminate();
      throw new DialError("channel closed");
    }
    return new WebSocketClientStream(ws, listener);
  }

  /** Closes every connection still open (their calls end UNAVAILABLE). */
  close(): void {
    this.closed = true;
    for (const ws of this.open) ws.terminate();
    this.open.clear();
  }
}

function tlsHandshake(socket: Socket, options: tls.ConnectionOptions): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ ...options, socket, ALPNProtocols: ["http/1.1"] }, () => {
      if ((options.rejectUnauthorized ?? true) && !s.authorized) return reject(s.authorizationError);
      s.removeAllListeners("error");
      resolve(s);
    });
    s.once("error", reject);
  });
}
