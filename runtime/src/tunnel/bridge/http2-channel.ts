// One HTTP/2 connection (a node:http2 ClientHttp2Session) to a router or a target, dialled
// again when it is gone. The bridge's Register streams and the sidecar's forwarded calls
// run on it instead of on a grpc-js channel: one fewer layer per message, and the session
// is ours to watch (GOAWAY, keepalive pings).
//
// Dialling: TCP (through an HTTP CONNECT proxy when one applies, see proxy.ts), then TLS
// with the same grpc-js ChannelCredentials users already pass (their secure connector does
// the handshake: CA, client certificate, checkServerIdentity, ALPN h2), then HTTP/2.
// A GOAWAY retires the session: streams on it finish, new ones go to a fresh session.
import http2, { type ClientHttp2Session } from "node:http2";
import { connect as netConnect, type Socket } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { sessionErrors } from "./grpc-client-stream.js";
import { connectThroughProxy, proxyFor, type ProxyConfig } from "./proxy.js";

export interface Http2ChannelOptions {
  credentials?: grpc.ChannelCredentials;
  /**
   * grpc-js channel options that still mean something here: grpc.ssl_target_name_override,
   * grpc.default_authority, grpc.keepalive_time_ms, grpc.keepalive_timeout_ms,
   * grpc.enable_http_proxy (0: ignore the proxy environment variables).
   */
  channelOptions?: grpc.ChannelOptions;
  /** An HTTP CONNECT proxy URL, false for none; default: from the environment (see proxy.ts). */
  proxy?: string | false;
  /** Gives up a dial (TCP, proxy, TLS) after this long. Default 20 s. */
  connectTimeoutMs?: number;
  /**
   * Keepalive pings (default on). Off for a connection that is idle between calls to a
   * server that punishes pings without calls (gRPC C-core answers them with GOAWAY
   * "too_many_pings"), as grpc-js clients do by default.
   */
  keepalive?: boolean;
  /** Hears about a proxy setting in the environment that cannot be used. */
  log?: (line: string) => void;
  /** The local address to dial from when dialling directly (a host with several); default: the system's choice. */
  localAddress?: string;
}

/** Why a session could not be had: carries grpc-js's wording so dial hints still apply. */
export class DialError extends Error {
  override readonly name = "DialError";
  constructor(
    message: string,
    /** The connection was made but HTTP/2 could not be spoken on it (ALPN chose another protocol). */
    readonly h2Refused = false,
  ) {
    super(message);
  }
}

/** Default keepalive: below common NAT and load-balancer idle timeouts (AWS NLB: 350 s). */
const KEEPALIVE_TIME_MS = 30_000;
const KEEPALIVE_TIMEOUT_MS = 20_000;

/** HTTP/2 settings for both uses: large windows, since one stream may carry many calls. */
const SETTINGS: http2.Settings = { initialWindowSize: 4 * 1024 * 1024, enablePush: false };
const SESSION_WINDOW = 16 * 1024 * 1024;

export interface Http2ChannelEvents {
  /** A session was retired by the peer's GOAWAY; streams on it may still finish. */
  goaway?(session: ClientHttp2Session): void;
}

export type SecureConnector = ReturnType<grpc.ChannelCredentials["_createSecureConnector"]>;

/** Default for Http2ChannelOptions.connectTimeoutMs. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 20_000;

/**
 * Where and how a channel dials, from its address and options: what Http2Channel and
 * WebSocketChannel (websocket-channel.ts) both work out the same way.
 */
export interface DialTarget {
  readonly address: string;
  /** The address without its "dns:" scheme. */
  readonly target: string;
  readonly host: string;
  readonly port: number;
  /** grpc.default_authority, else the target. */
  readonly authority: string;
  readonly secure: boolean;
  /** The proxy in use; undefined when dialling directly. */
  readonly proxy: ProxyConfig | undefined;
}

export function dialTarget(address: string, options: Http2ChannelOptions): DialTarget {
  const target = address.replace(/^dns:(\/\/[^/]*\/)?/, "");
  const { host, port } = splitAddress(address);
  const co = options.channelOptions ?? {};
  const envAllowed = co["grpc.enable_http_proxy"] !== 0;
  return {
    address,
    target,
    host,
    port,
    authority: typeof co["grpc.default_authority"] === "string" ? co["grpc.default_authority"] : target,
    secure: options.credentials?._isSecure() ?? false,
    proxy: proxyFor({ host, port }, options.proxy ?? (envAllowed ? undefined : false), process.env, options.log),
  };
}

/** grpc-js's secure connector for the options' credentials (insecure without any): it does the TLS handshake. */
export function secureConnector(target: DialTarget, options: Http2ChannelOptions): SecureConnector {
  const credentials = options.credentials ?? grpc.credentials.createInsecure();
  return credentials._createSecureConnector({ scheme: "dns", path: target.target }, options.channelOptions ?? {});
}

/** A TCP connection to the target, through its proxy when it has one; a DialError when none is had. */
export async function dialSocket(target: DialTarget, timeoutMs: number, localAddress?: string): Promise<Socket> {
  const destination = { host: target.host, port: target.port };
  try {
    return target.proxy ? await connectThroughProxy(target.proxy, destination, timeoutMs) : await tcpConnect(destination, timeoutMs, localAddress);
  } catch (e) {
    throw new DialError(`Failed to connect to ${target.address}: ${(e as Error).message}`);
  }
}

export class Http2Channel {
  readonly host: string;
  readonly port: number;
  readonly authority: string;
  readonly secure: boolean;
  private current: Promise<ClientHttp2Session> | undefined;
  /** What `current` resolved to. */
  private currentSession: ClientHttp2Session | undefined;
  private closed = false;
  private readonly sessions = new Set<ClientHttp2Session>();
  private readonly keepaliveMs: number;
  private readonly keepaliveTimeoutMs: number;
  /** The proxy in use, for logs; undefined when dialling directly. */
  readonly proxy: ProxyConfig | undefined;
  private readonly target: DialTarget;

  constructor(
    readonly address: string,
    private readonly options: Http2ChannelOptions = {},
    private readonly events: Http2ChannelEvents = {},
  ) {
    const target = dialTarget(address, options);
    this.target = target;
    this.host = target.host;
    this.port = target.port;
    this.authority = target.authority;
    this.secure = target.secure;
    this.proxy = target.proxy;
    const co = options.channelOptions ?? {};
    this.keepaliveMs = positive(co["grpc.keepalive_time_ms"]) ?? KEEPALIVE_TIME_MS;
    this.keepaliveTimeoutMs = positive(co["grpc.keepalive_timeout_ms"]) ?? KEEPALIVE_TIMEOUT_MS;
    this.connector = secureConnector(target, options);
  }

  private readonly connector: SecureConnector;
  /** Sessions whose peer has sent its SETTINGS: HTTP/2 was established. */
  private readonly established = new WeakSet<ClientHttp2Session>();

  /** Whether `session` ever heard from the peer in HTTP/2 (else a failure is a failure to connect). */
  isEstablished(session: ClientHttp2Session): boolean {
    return this.established.has(session);
  }

  /**
   * Metadata from call credentials composed into the channel credentials
   * (`credentials.combineChannelCredentials`), for a call to `path`; empty without any.
   */
  async callMetadata(path: string): Promise<grpc.Metadata> {
    const service = path.slice(1, path.lastIndexOf("/"));
    const method = path.slice(path.lastIndexOf("/") + 1);
    return this.connector.getCallCredentials().generateMetadata({ service_url: `https://${this.authority}/${service}`, method_name: method });
  }

  /**
   * The open session when there is one, else undefined (then `session()` dials): a caller
   * per forwarded call need not wait a promise's turn for what is already there.
   */
  openSession(): ClientHttp2Session | undefined {
    const s = this.currentSession;
    return s && !s.closed && !s.destroyed ? s : undefined;
  }

  /** The open session, or a new one (dialled once for everyone asking meanwhile). */
  session(): Promise<ClientHttp2Session> {
    if (this.closed) return Promise.reject(new DialError("channel closed"));
    if (!this.current) {
      const p = this.dial();
      this.current = p;
      p.then(
        (s) => {
          if (this.current !== p) return;
          // Gone already (closed while the promise settled): dial again next time.
          if (s.closed || s.destroyed) this.current = undefined;
          else this.currentSession = s;
        },
        () => {
          if (this.current === p) this.current = undefined;
        },
      );
    }
    return this.current;
  }

  /** Forgets `session` as the current one (it failed, or went away): the next ask dials. */
  private retire(session: ClientHttp2Session): void {
    // Synchronous: a GOAWAY handler asks for a new session right away.
    if (this.currentSession === session) {
      this.current = undefined;
      this.currentSession = undefined;
    }
  }

  /**
   * Moves off `session` (its router is draining): the next ask dials a new connection, which
   * a load balancer in front may send to another router; streams on it finish, then it closes.
   */
  leave(session: ClientHttp2Session): void {
    this.retire(session);
    if (!session.destroyed && !session.closed) session.close();
  }

  /**
   * Gives up on `session` at once: a stream on it heard nothing for its keepalive timeout, so
   * the connection is taken for dead (a NAT that forgot it, a network change). The next ask
   * dials anew instead of opening streams on it; streams still on it fail.
   */
  discard(session: ClientHttp2Session, why: string): void {
    this.retire(session);
    if (!session.destroyed) session.destroy(new Error(why));
  }

  /**
   * Closes every session once its streams are done (what was written is still delivered);
   * sessions still busy after `graceMs` are destroyed.
   */
  close(graceMs = 5000): void {
    if (this.closed) return;
    this.closed = true;
    this.current = undefined;
    this.currentSession = undefined;
    this.connector.destroy();
    for (const s of this.sessions) {
      s.close();
      setTimeout(() => s.destroy(), graceMs).unref();
    }
  }

  private async dial(): Promise<ClientHttp2Session> {
    const timeoutMs = this.options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const socket = await dialSocket(this.target, timeoutMs, this.options.localAddress);
    let connected: { socket: Socket; secure: boolean };
    try {
      connected = await withTimeout(this.connector.connect(socket), timeoutMs, `TLS handshake with ${this.address} did not finish within ${timeoutMs} ms`);
    } catch (e) {
      socket.destroy();
      // A TLS server without HTTP/2 that refuses a client offering only h2 (nginx does).
      const noH2 = (e as { code?: unknown }).code === "ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL";
      throw new DialError(
        `Failed to connect to ${this.address}: ${noH2 ? "the server refused ALPN h2 (TLS alert no_application_protocol): it does not speak HTTP/2" : (e as Error).message}`,
        noH2,
      );
    }
    const tls = connected.socket as Socket & { alpnProtocol?: string | false };
    if (connected.secure && tls.alpnProtocol !== "h2") {
      tls.destroy();
      throw new DialError(`Failed to connect to ${this.address}: the server did not agree to HTTP/2 (ALPN ${tls.alpnProtocol || "none"})`, true);
    }
    if (this.closed) {
      tls.destroy();
      throw new DialError("channel closed");
    }
    const session = http2.connect(`${connected.secure ? "https" : "http"}://${this.authority}`, {
      createConnection: () => connected.socket,
      settings: SETTINGS,
      // In megabytes: a busy Register stream must not hit nghttp2's default 10 MB and be cut off.
      maxSessionMemory: 256,
    });
    this.sessions.add(session);
    // Surfaces on the streams as their status.
    session.on("error", (e: Error) => sessionErrors.set(session, e));
    session.once("remoteSettings", () => this.established.add(session));
    session.once("connect", () => {
      try {
        session.setLocalWindowSize(SESSION_WINDOW);
      } catch {
        // closed meanwhile
      }
    });
    session.once("close", () => {
      this.sessions.delete(session);
      clearInterval(keepalive);
      this.retire(session);
    });
    session.once("goaway", () => {
      this.retire(session);
      this.events.goaway?.(session);
    });
    const keepalive = this.options.keepalive === false ? undefined : setInterval(() => this.ping(session), this.keepaliveMs);
    keepalive?.unref();
    return session;
  }

  /** A keepalive ping; no answer within the timeout means the peer is gone: the session is destroyed. */
  private ping(session: ClientHttp2Session): void {
    if (session.destroyed || session.closed) return;
    const timer = setTimeout(() => session.destroy(new Error(`no answer to a keepalive ping within ${this.keepaliveTimeoutMs} ms`)), this.keepaliveTimeoutMs);
    timer.unref();
    try {
      session.ping((err) => {
        clearTimeout(timer);
        if (err && !session.destroyed) session.destroy(err);
      });
    } catch {
      clearTimeout(timer);
    }
  }
}

function positive(v: unknown): number | undefined {
  return typeof v === "number" && v > 0 ? v : undefined;
}

function tcpConnect(destination: { host: string; port: number }, timeoutMs: number, localAddress?: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: destination.host, port: destination.port, ...(localAddress ? { localAddress } : {}) });
    socket.setNoDelay(true);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no connection within ${timeoutMs} ms`));
    }, timeoutMs);
    timer.unref();
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.removeAllListeners("error");
      resolve(socket);
    });
    socket.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

export function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(message)), ms);
    timer.unref();
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

/** "host:port", "[::1]:port" or "dns:///host:port"; the port defaults to 443 as in gRPC. */
function splitAddress(address: string): { host: string; port: number } {
  const target = address.replace(/^dns:(\/\/[^/]*\/)?/, "");
  const m = /^(?:\[([^\]]+)\]|([^:]+))(?::(\d+))?$/.exec(target);
  if (!m) throw new Error(`${address}: expected HOST:PORT`);
  return { host: (m[1] ?? m[2])!, port: m[3] ? Number(m[3]) : 443 };
}
