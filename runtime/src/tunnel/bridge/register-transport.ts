// How a bridge opens Register streams to one router, whichever transport carries them: on
// the router's HTTP/2 connection (http2-channel.ts) or, for paths that carry HTTP/1.1 only,
// one WebSocket each (websocket-channel.ts), as the TransportChoice (transport.ts) says. The
// bridge's RegisterConnection sees only a RegisterStream: bytes out, bytes and one
// end in, and a few hints about the connection under it (dead, draining, sent GOAWAY).
import type { ClientHttp2Session } from "node:http2";
import * as grpc from "@grpc/grpc-js";
import type { BackoffOptions } from "../backoff.js";
import { GrpcClientStream } from "./grpc-client-stream.js";
import { DialError, Http2Channel, type Http2ChannelOptions } from "./http2-channel.js";
import type { ProxyConfig } from "./proxy.js";
import { TransportChoice, type TransportMode } from "./transport.js";
import { WebSocketChannel, type WebSocketClientStream } from "./websocket-channel.js";

export interface RegisterStreamListener {
  onMessage(message: Buffer): void;
  /**
   * Called once, last, unless this side ended or cancelled the stream first: why it is over
   * ("the router ended the stream" when it ended it with OK, else "CODE: details"), the
   * router's trailers if any, and whether the next stream should be opened at once (HTTP/2
   * could not be spoken on a connection that was made: it goes over WebSocket).
   */
  onEnd(reason: string, trailers: grpc.Metadata | undefined, retryNow: boolean): void;
}

/** One Register stream, whatever carries it. */
export interface RegisterStream {
  write(message: Buffer): void;
  /** Half-closes: the router ends the stream. */
  end(): void;
  /** Ends the stream from this side now. */
  cancel(): void;
  /** The router welcomed the stream: the watch over its connection until then stops. */
  welcomed(): void;
  /** The router has been silent past the keepalive: the connection is dead too, the next stream dials anew. */
  discard(why: string): void;
  /** The router drains: later streams go on a new connection (behind a load balancer, another router). */
  leave(): void;
  /** Whether the stream runs on `connection` (one the router sent GOAWAY on). */
  runsOn(connection: object): boolean;
  /**
   * Bytes from the router so far, whole messages or not: a router in the middle of a long
   * message is not silent. Optional: undefined says nothing (WebSocket hands whole messages).
   */
  readonly bytesReceived?: number;
}

/** What opens Register streams to one router (RegisterTransport; a test's in-memory one). */
export interface RegisterOpener {
  /** The proxy the router is dialled through, if any. */
  readonly proxy?: ProxyConfig | undefined;
  /**
   * Opens a Register stream to `path`. Undefined when it could not be opened (the listener's
   * onEnd says why) or when `abandoned()` holds once it could (nothing is reported then).
   */
  open(path: string, listener: RegisterStreamListener, abandoned: () => boolean): Promise<RegisterStream | undefined>;
  close(): void;
}

export interface RegisterTransportOptions {
  mode: TransportMode;
  /** While "auto" is on WebSocket: the delays between HTTP/2 probes. */
  h2Probe?: BackoffOptions;
  /** Until Welcome, the connection is pinged this often and dropped when a ping goes unanswered as long. */
  keepaliveMs: number;
}

export interface RegisterTransportEvents {
  /** The router sent GOAWAY on `connection`: streams on it should move to a new one. */
  goaway(connection: object): void;
  /** "auto" can speak HTTP/2 again: streams on WebSocket should move back. */
  backToH2(): void;
  log(line: string): void;
}

/** "auto": how long a connection may take to say anything in HTTP/2 before it counts as refused. */
const H2_ESTABLISH_MS = 10_000;

/** The Register streams to one router, over HTTP/2 or WebSocket. */
export class RegisterTransport implements RegisterOpener {
  private readonly channel: Http2Channel;
  private wsChannel: WebSocketChannel | undefined;
  /** HTTP/2 or WebSocket for new Register streams (transport.ts). */
  private readonly choice: TransportChoice;
  private readonly watched = new WeakSet<ClientHttp2Session>();

  constructor(
    readonly address: string,
    private readonly channelOptions: Http2ChannelOptions,
    private readonly options: RegisterTransportOptions,
    events: RegisterTransportEvents,
  ) {
    this.channel = new Http2Channel(address, channelOptions, { goaway: (session) => events.goaway(session) });
    this.choice = new TransportChoice(
      options.mode,
      `router ${address}`,
      { probeH2: () => this.probeH2(), backToH2: events.backToH2, log: events.log },
      options.h2Probe,
    );
  }

  get proxy(): ProxyConfig | undefined {
    return this.channel.proxy;
  }

  async open(path: string, listener: RegisterStreamListener, abandoned: () => boolean): Promise<RegisterStream | undefined> {
    if (this.choice.current === "websocket") return this.openWebSocket(path, listener, abandoned);
    let session: ClientHttp2Session;
    let md: grpc.Metadata;
    try {
      session = await this.channel.session();
      md = await this.channel.callMetadata(path);
    } catch (e) {
      const retryNow = e instanceof DialError && e.h2Refused && this.choice.h2Failed(e.message);
      listener.onEnd(`UNAVAILABLE: ${(e as Error).message}`, undefined, retryNow);
      return undefined;
    }
    if (abandoned()) return undefined;
    this.expectH2(session);
    try {
      return new H2RegisterStream(this, session, path, md, listener, this.options.keepaliveMs);
    } catch (e) {
      // The session closed between dialling and now (a GOAWAY): the next attempt dials anew.
      listener.onEnd(`UNAVAILABLE: ${(e as Error).message}`, undefined, false);
      return undefined;
    }
  }

  /** The same Register stream over WebSocket: the call's metadata as the Upgrade's headers. */
  private async openWebSocket(path: string, listener: RegisterStreamListener, abandoned: () => boolean): Promise<RegisterStream | undefined> {
    let call: WebSocketClientStream;
    try {
      const md = await this.channel.callMetadata(path);
      if (abandoned()) return undefined;
      this.wsChannel ??= new WebSocketChannel(this.address, this.channelOptions);
      call = await this.wsChannel.call(path, md, {
        onMessage: (m) => listener.onMessage(m),
        // The trailers come over WebSocket too: a Hello-rate turn-away's hint is honoured alike.
        onStatus: (s) => listener.onEnd(s.code === grpc.status.OK ? ENDED : `${grpc.status[s.code] ?? s.code}: ${s.details}`, s.metadata, false),
      });
    } catch (e) {
      listener.onEnd(`UNAVAILABLE: ${(e as Error).message}`, undefined, false);
      return undefined;
    }
    if (abandoned()) {
      call.cancel();
      return undefined;
    }
    return new WsRegisterStream(call);
  }

  /** @internal for H2RegisterStream */
  isEstablished(session: ClientHttp2Session): boolean {
    return this.channel.isEstablished(session);
  }

  /** @internal The connection was made, but no HTTP/2 came back on it: true when "auto" retries over WebSocket now. */
  h2Failed(reason: string): boolean {
    return this.choice.h2Failed(reason);
  }

  /** @internal */
  discard(session: ClientHttp2Session, why: string): void {
    this.channel.discard(session, why);
  }

  /** @internal */
  leave(session: ClientHttp2Session): void {
    this.channel.leave(session);
  }

  /**
   * "auto": a session whose peer says nothing in HTTP/2 (no SETTINGS) within
   * H2_ESTABLISH_MS is given up, so that a proxy that swallows the HTTP/2 preface in
   * silence leads to the fallback instead of a long wait for keepalive to notice.
   */
  private expectH2(session: ClientHttp2Session): void {
    if (this.choice.mode !== "auto" || this.channel.isEstablished(session) || this.watched.has(session)) return;
    this.watched.add(session);
    void this.settingsWithin(session).then((ok) => {
      if (!ok && !session.destroyed) session.destroy(new Error(`no HTTP/2 answer within ${H2_ESTABLISH_MS} ms`));
    });
  }

  /** Whether HTTP/2 to the router can be established now: a session whose peer sent SETTINGS. */
  private async probeH2(): Promise<boolean> {
    let session: ClientHttp2Session;
    try {
      session = await this.channel.session();
    } catch {
      return false;
    }
    const ok = await this.settingsWithin(session);
    if (!ok && !session.destroyed) session.destroy();
    return ok;
  }

  /** True once the peer of `session` has sent its SETTINGS; false when the session closes or H2_ESTABLISH_MS pass first. */
  private settingsWithin(session: ClientHttp2Session): Promise<boolean> {
    if (this.channel.isEstablished(session)) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), H2_ESTABLISH_MS);
      timer.unref();
      session.once("remoteSettings", () => {
        clearTimeout(timer);
        resolve(true);
      });
      session.once("close", () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
  }

  close(): void {
    this.choice.close();
    this.channel.close();
    this.wsChannel?.close();
  }
}

const ENDED = "the router ended the stream";

/** A Register stream on the router's HTTP/2 connection. */
class H2RegisterStream implements RegisterStream {
  private readonly call: GrpcClientStream;
  /** Ended or reported: the listener hears nothing more. */
  private over = false;
  private isWelcomed = false;
  private watch: NodeJS.Timeout | undefined;

  constructor(
    private readonly transport: RegisterTransport,
    private readonly session: ClientHttp2Session,
    path: string,
    md: grpc.Metadata,
    private readonly listener: RegisterStreamListener,
    keepaliveMs: number,
  ) {
    this.call = new GrpcClientStream(session, path, md, {
      onMessage: (m) => listener.onMessage(m),
      onStatus: (s) => this.onStatus(s),
    });
    this.watchUntilWelcome(keepaliveMs);
  }

  get bytesReceived(): number {
    return this.call.bytesReceived;
  }

  private onStatus(s: grpc.StatusObject): void {
    if (this.over) return;
    if (s.code === grpc.status.OK) return this.report(ENDED, s.metadata, false);
    const established = this.transport.isEstablished(this.session);
    // Nothing ever came back over HTTP/2: the connection itself failed (say so, for dial hints).
    const failed = s.code === grpc.status.UNAVAILABLE && !established && !s.details.startsWith("Failed to connect");
    // The connection was made, but no HTTP/2 came back on it: something on the way speaks
    // HTTP/1.1 only ("auto" moves to WebSocket).
    const retryNow = !this.isWelcomed && !established && this.transport.h2Failed(`${grpc.status[s.code] ?? s.code}: ${s.details}`);
    this.report(`${grpc.status[s.code] ?? s.code}: ${failed ? `Failed to connect to ${this.transport.address}: ` : ""}${s.details}`, s.metadata, retryNow);
  }

  private report(reason: string, trailers: grpc.Metadata | undefined, retryNow: boolean): void {
    if (this.over) return;
    this.stop();
    this.listener.onEnd(reason, trailers, retryNow);
  }

  private stop(): void {
    this.over = true;
    this.stopWatch();
  }

  private stopWatch(): void {
    if (this.watch) clearInterval(this.watch);
    this.watch = undefined;
  }

  /**
   * Until Welcome (the router may be asking a slow authorize hook) nothing is due on the
   * stream, so its silence proves nothing; the connection's can: an HTTP/2 PING unanswered
   * for a keepalive interval means it died on the way in, and it is dialled anew.
   */
  private watchUntilWelcome(interval: number): void {
    const session = this.session;
    let waiting = false;
    // stop() and welcomed() clear the interval; the timer of a ping under way they leave, so it looks.
    this.watch = setInterval(() => {
      if (waiting || session.destroyed) return;
      waiting = true;
      const dead = setTimeout(() => {
        if (this.over || this.isWelcomed) return;
        const why = `no answer to an HTTP/2 ping within ${interval} ms while waiting for Welcome`;
        this.transport.discard(session, why);
        this.report(why, undefined, false);
      }, interval);
      dead.unref();
      try {
        session.ping(() => {
          clearTimeout(dead);
          waiting = false;
        });
      } catch {
        clearTimeout(dead);
      }
    }, interval);
    this.watch.unref();
  }

  write(message: Buffer): void {
    this.call.write(message);
  }

  end(): void {
    this.stop();
    this.call.end();
  }

  cancel(): void {
    this.stop();
    this.call.cancel();
  }

  welcomed(): void {
    this.isWelcomed = true;
    this.stopWatch();
  }

  discard(why: string): void {
    this.transport.discard(this.session, why);
  }

  leave(): void {
    this.transport.leave(this.session);
  }

  runsOn(connection: object): boolean {
    return connection === this.session;
  }
}

/** A Register stream on its own WebSocket connection: nothing to share, so nothing to leave or discard. */
class WsRegisterStream implements RegisterStream {
  constructor(private readonly call: WebSocketClientStream) {}

  write(message: Buffer): void {
    this.call.write(message);
  }

  end(): void {
    this.call.end();
  }

  cancel(): void {
    this.call.cancel();
  }

  welcomed(): void {}

  discard(): void {}

  leave(): void {}

  runsOn(): boolean {
    return false;
  }
}
