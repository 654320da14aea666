// The instance side of the tunnel on raw bytes: dials the router, registers (Hello →
// Welcome), keeps `streams` Register streams open with gRPC's reconnect backoff, and runs
// a RawHandler for every call the router opens. createBridge puts a Connect ServiceImpl on
// top; `grpcrouter bridge --target` forwards the bytes to an existing gRPC server.
import { hostname } from "node:os";
import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { durationMs } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import {
  CancelSchema,
  DrainSchema,
  HealthReportSchema,
  HealthReport_Status,
  HelloSchema,
  OpenSchema,
  ProtocolVersion,
  WelcomeSchema,
  type Welcome,
} from "../gen/grpcrouter/v1/tunnel_pb.js";
import { backoffDelay, type BackoffOptions } from "./backoff.js";
import { dialHint } from "./dial-hint.js";
import { BridgeCall, CallError, type CallHost, type RawHandler, type RawStatus } from "./bridge-call.js";
import { InstanceFrame, RouterFrame, decodeControl, type Frame } from "./frames.js";
import { REFUSED_KEY } from "./router-call.js";
import { MAX_PUSHBACK_MS, PUSHBACK_KEY } from "./registration-limits.js";
import { RegisterTransport, type RegisterOpener, type RegisterStream } from "./bridge/register-transport.js";
import { TRANSPORT_MODES, type TransportMode } from "./bridge/transport.js";
import { tunnelTable, type TunnelSpec, type TunnelTable } from "./spec.js";
import { RouterSet, parseRouterTargets, type RouterEndpoint } from "../discovery/router-targets.js";
import { FrameError } from "./wire.js";
import { TunnelEndpoint, type EndpointSide } from "./protocol/tunnel-endpoint.js";
import { systemClock, type Clock, type TimerHandle } from "../resilience/clock.js";
import { Drained } from "./drained.js";

export interface BridgeOptions {
  /**
   * host:port of the router, e.g. "localhost:9090"; or several routers of one deployment
   * (an array, or "a:9090,b:9090"): the bridge registers with each, so losing one router
   * loses no instance. Routers named in a Welcome (`router_addresses`) are added too.
   * gRPC's `dns:///name:port` (or `dns://dns-server/name:port`) registers with every
   * address the name resolves to (a Kubernetes headless Service), re-resolved every 30 s and
   * whenever a connection is lost; a router that leaves DNS is drained and dropped.
   */
  router: string | readonly string[];
  /** How often a `dns:` router target is resolved again. Default 30 s. */
  routerRefreshMs?: number;
  credentials?: grpc.ChannelCredentials;
  /** Stable id of this instance; default: a random UUID. */
  instanceId?: string;
  labels?: Record<string, string>;
  weight?: number;
  /** Calls at once over all streams; 0 or unset: no limit. */
  maxConcurrentCalls?: number;
  /** Register streams to hold open (one HTTP/2 stream's window caps each). Default 1. */
  streams?: number;
  /** Credentials sent in Hello, asked for anew on every (re)connect. */
  credentialsHook?: () => Record<string, string> | Promise<Record<string, string>>;
  logger?: (line: string) => void;
  /** For operators; default "<hostname> pid <pid>". */
  description?: string;
  /** Request bytes the router may send per call before the bridge grants more. Default 64 KiB. */
  callWindow?: number;
  /** Reconnect backoff; default gRPC's (1 s, ×1.6, ±20 %, 120 s). */
  backoff?: BackoffOptions;
  /**
   * Keepalive of each Register stream: the bridge pings when the stream was idle (nothing
   * sent or nothing heard) for this long, and a stream silent for two intervals is taken
   * for dead and dialled anew (after a sleep, a network change, a NAT that forgot the flow).
   * Default: the interval the router asks for in Welcome (10 s unless the router is set
   * otherwise). Keep it below the idle timeout of any NAT or load balancer on the path.
   */
  keepaliveMs?: number;
  /** Largest response message a handler may send. Default 4 MiB. */
  maxMessageBytes?: number;
  /**
   * grpc-js channel options the bridge's HTTP/2 connection honours: grpc.ssl_target_name_override,
   * grpc.default_authority, grpc.keepalive_time_ms (default 30000), grpc.keepalive_timeout_ms
   * (default 20000), grpc.enable_http_proxy (0: ignore the proxy environment variables).
   */
  channelOptions?: grpc.ChannelOptions;
  /**
   * An HTTP CONNECT proxy to reach the router through, `http://[user:password@]host:port`
   * (basic credentials from the URL; TLS to the router runs inside the tunnel); false for
   * none. Default: the environment, as grpc-js reads it: grpc_proxy, else https_proxy, else
   * http_proxy, except for routers that no_grpc_proxy (else no_proxy) names.
   */
  proxy?: string | false;
  /**
   * How Register streams reach the router: "h2" (HTTP/2 only), "websocket" (the same stream
   * over a WebSocket, for paths that carry HTTP/1.1 only), or "auto" (the default): HTTP/2,
   * falling back to WebSocket when a connection is made but HTTP/2 cannot be spoken on it (a
   * proxy answers HTTP/1.1 only), probing HTTP/2 meanwhile and moving back when it works.
   */
  transport?: TransportMode;
  /** While "auto" is on WebSocket: the delays between HTTP/2 probes. Default 5 s, ×2, ±20 %, at most 5 min. */
  h2Probe?: BackoffOptions;
  /** The local address to dial routers from (a host with several addresses); default: the system's choice. */
  localAddress?: string;
}

export interface Bridge {
  /** Resolves once every Register stream is registered (Welcome); rejects if the router refuses. */
  start(): Promise<void>;
  /**
   * Drains: no new calls, in-flight calls get `graceMs` (default 10000) to finish. Calling it
   * again (or while a refusal stops the bridge) waits for the same stop.
   */
  stop(graceMs?: number): Promise<void>;
  /**
   * Settles once the bridge has stopped: resolves after stop(); rejects with a
   * BridgeRefusedError when a router refused the instance — at start or on any later
   * reconnect (its token was revoked, its certificate no longer admitted). A refusal is final:
   * the bridge stops (draining its calls) instead of retrying; a lost connection, a router
   * shutting down or a failing authorize hook are retried and never end up here.
   */
  readonly stopped: Promise<void>;
  /**
   * Reports the instance's health to every router it is registered with (HealthReport):
   * NOT_SERVING takes it out of the routers' picks without deregistering it; SERVING puts it
   * back. Remembered, and reported again on every new Register stream.
   */
  setServing(serving: boolean): void;
  /**
   * Changes what the instance tells routers in Hello (its weight, labels, call limit) at
   * runtime: every Register stream is replaced by a fresh one with the new Hello; the old one
   * drains (calls in flight finish on it) once the new one is registered. No call is lost.
   */
  update(changes: BridgeUpdate): void;
  readonly instanceId: string;
}

export interface BridgeUpdate {
  weight?: number;
  labels?: Record<string, string>;
  maxConcurrentCalls?: number;
}

/** A router refused the instance (Welcome not accepted), or speaks a protocol version the bridge does not: retrying cannot help. */
export class BridgeRefusedError extends Error {
  override readonly name = "BridgeRefusedError";
  constructor(
    /** The router's address, as the bridge dialled it. */
    readonly router: string,
    /** The router's reason, e.g. "not authorized: the token is not valid for demo.v1.Echo". */
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export function createRawBridge(tunnel: TunnelSpec, handler: RawHandler, options: BridgeOptions): Bridge {
  return new RawBridge(tunnelTable(tunnel), handler, options);
}

/** @internal Parts a test replaces: how Register streams are opened, and the clock keepalive runs on. */
export interface BridgeInternals {
  transport?: (address: string) => RegisterOpener;
  clock?: Clock;
}

/** @internal createRawBridge with some of its parts replaced (tests without sockets). */
export function createRawBridgeWith(tunnel: TunnelSpec, handler: RawHandler, options: BridgeOptions, internals: BridgeInternals): Bridge {
  return new RawBridge(tunnelTable(tunnel), handler, options, internals);
}

class RawBridge implements Bridge {
  readonly instanceId: string;
  readonly log: (line: string) => void;
  readonly callWindow: number;
  readonly maxMessageBytes: number;
  private readonly links = new Map<string, RouterLink>();
  readonly options: BridgeOptions;
  active = 0;
  /** Woken when a call ends or a Register stream closes: what the drains below wait for. */
  readonly drained = new Drained();
  stopping = false;
  serving = true;
  private started: Promise<void> | undefined;
  private startSettle: { resolve(): void; reject(e: Error): void } | undefined;
  private stopDone: Promise<void> | undefined;
  private refusal: BridgeRefusedError | undefined;
  /** Some Register stream was welcomed at some point: a refusal after that drains calls. */
  private everWelcomed = false;
  readonly stopped: Promise<void>;
  private settleStopped!: (e?: Error) => void;

  /** The time keepalive is measured in. */
  readonly clock: Clock;

  constructor(
    readonly table: TunnelTable,
    readonly handler: RawHandler,
    options: BridgeOptions,
    readonly internals: BridgeInternals = {},
  ) {
    this.clock = internals.clock ?? systemClock;
    // A copy: update() changes weight, labels and the call limit for later Hellos.
    this.options = { ...options };
    const k = options.keepaliveMs;
    if (k !== undefined && !(Number.isFinite(k) && k > 0)) throw new Error(`BridgeOptions.keepaliveMs: expected a positive number of milliseconds, got ${k}`);
    this.instanceId = options.instanceId ?? randomUUID();
    this.log = options.logger ?? ((line) => console.error(`grpcrouter bridge: ${line}`));
    this.callWindow = options.callWindow ?? 65536;
    this.maxMessageBytes = options.maxMessageBytes ?? 4 * 1024 * 1024;
    this.stopped = new Promise<void>((resolve, reject) => {
      this.settleStopped = (e) => (e ? reject(e) : resolve());
    });
    // Nobody has to listen: an unobserved refusal must not crash the process.
    this.stopped.catch(() => {});
  }

  start(): Promise<void> {
    if (this.started) return this.started;
    let targets;
    const transport = this.options.transport;
    if (transport !== undefined && !TRANSPORT_MODES.includes(transport)) {
      return Promise.reject(new Error(`BridgeOptions.transport: expected ${TRANSPORT_MODES.join(", ")}, got ${JSON.stringify(transport)}`));
    }
    try {
      targets = parseRouterTargets(this.options.router);
    } catch (e) {
      return Promise.reject(new Error(`BridgeOptions.router: ${(e as Error).message}`));
    }
    const n = Math.max(1, this.options.streams ?? 1);
    this.started = new Promise<void>((resolve, reject) => {
      this.startSettle = { resolve, reject };
      // Resolved once every router known at the start has welcomed each of our streams.
      let welcomed = 0;
      let expected = Infinity;
      const events: SlotEvents = {
        welcomed: () => {
          if (++welcomed >= expected) this.settleStart();
        },
      };
      if (!targets.some((t) => t.kind === "dns")) {
        expected = targets.length * n;
        for (const t of targets) if (t.kind === "static") this.addRouter(t.address, events);
        return;
      }
      this.routerSet = new RouterSet(this.options.router, {
        ...(this.options.routerRefreshMs ? { intervalMs: this.options.routerRefreshMs } : {}),
        logger: (line) => this.log(line),
        onChange: (added, removed) => {
          for (const ep of added) this.addRouter(ep.address, events, ep);
          for (const ep of removed) void this.removeRouter(ep.address, "it is no longer in DNS");
        },
      });
      this.routerSet.start().then(
        (endpoints) => {
          expected = endpoints.length * n;
          if (welcomed >= expected) this.settleStart();
        },
        // Not resolvable yet: the set keeps trying (a headless Service lists no router until
        // one is ready); start() waits for the routers it finds, as it waits for a router
        // that is down.
        (e: Error) => this.log(`${e.message}; retrying every 30 s`),
      );
    });
    return this.started;
  }

  /** Routers from a `dns:` target, when the options name one. */
  private routerSet: RouterSet | undefined;

  /** A Register stream to `address` was lost: a dns target may have moved, look again. */
  routerLost(): void {
    void this.routerSet?.refresh();
  }

  /**
   * Stops registering with one router (it left DNS): no new calls reach us through it, calls
   * in flight there finish (up to `graceMs`), then its streams close.
   */
  async removeRouter(address: string, why: string, graceMs = 30_000): Promise<void> {
    const link = this.links.get(address);
    if (!link) return;
    this.links.delete(address);
    this.log(`leaving router ${address}: ${why}`);
    link.drain();
    await this.drained.wait(() => !link.registered(), graceMs);
    link.close(`router ${address} left: ${why}`);
  }

  private settleStart(error?: Error): void {
    const s = this.startSettle;
    if (!s) return;
    this.startSettle = undefined;
    if (error) s.reject(error);
    else s.resolve();
  }

  /** Some Register stream was welcomed. */
  welcomedOnce(): void {
    this.everWelcomed = true;
  }

  /**
   * A router refused the instance: final (see `stopped`). Stops the whole bridge — an
   * instance half-registered with some routers of a deployment would be a silent surprise.
   */
  refused(address: string, reason: string, byBridge = false): void {
    if (this.refusal) return;
    const what = byBridge
      ? `instance ${this.instanceId} of ${this.table.spec.service.typeName} cannot register with router ${address}`
      : `router ${address} refused instance ${this.instanceId} of ${this.table.spec.service.typeName}`;
    const error = new BridgeRefusedError(address, reason, `${what}: ${reason}`);
    this.refusal = error;
    this.log(
      `${byBridge ? `cannot register with router ${address}` : `router ${address} refused registration`}: ${reason}; stopping (a refusal is final, retrying would not help)`,
    );
    this.settleStart(error);
    // Before any Welcome nothing runs here; after, calls in flight on other streams finish.
    void this.stop(this.everWelcomed ? 10_000 : 0);
  }

  /**
   * Registers with one more router (from the options, named in a Welcome, or resolved from
   * DNS, in which case `endpoint.authority` is the name TLS checks and `:authority` carries).
   */
  addRouter(address: string, events: SlotEvents = { welcomed: () => {} }, endpoint?: RouterEndpoint): void {
    if (this.links.has(address) || this.stopping) return;
    const link = new RouterLink(this, address, events, endpoint?.authority);
    this.links.set(address, link);
    link.start();
  }

  update(changes: BridgeUpdate): void {
    if (this.stopping) return;
    const o = this.options as { -readonly [K in keyof BridgeOptions]: BridgeOptions[K] };
    if (changes.weight !== undefined) o.weight = changes.weight;
    if (changes.labels !== undefined) o.labels = { ...changes.labels };
    if (changes.maxConcurrentCalls !== undefined) o.maxConcurrentCalls = changes.maxConcurrentCalls;
    for (const l of this.links.values()) l.renew();
  }

  setServing(serving: boolean): void {
    if (this.serving === serving) return;
    this.serving = serving;
    for (const l of this.links.values()) l.reportHealth();
  }

  stop(graceMs = 10_000): Promise<void> {
    this.stopDone ??= this.drainAndClose(graceMs).then(() => this.settleStopped(this.refusal));
    return this.stopDone;
  }

  private async drainAndClose(graceMs: number): Promise<void> {
    this.stopping = true;
    this.routerSet?.close();
    for (const l of this.links.values()) l.drain();
    // Done when the calls are, and the routers have ended the drained streams: a router ends
    // one once no call is left on it, so an Open crossing our Drain is refused, not cut off.
    await this.drained.wait(() => this.active === 0 && ![...this.links.values()].some((l) => l.registered()), graceMs);
    for (const l of this.links.values()) l.close("instance stopping");
  }
}

/** One router: the transport to it and this instance's pool of Register streams to it. */
class RouterLink {
  /** Opens Register streams over HTTP/2 or WebSocket (bridge/register-transport.ts). */
  readonly transport: RegisterOpener;
  private readonly slots: Slot[] = [];

  constructor(
    readonly bridge: RawBridge,
    readonly address: string,
    private readonly events: SlotEvents,
    /** The DNS name `address` was resolved from: TLS verifies it and `:authority` names it. */
    authority?: string,
  ) {
    const o = bridge.options;
    const port = address.slice(address.lastIndexOf(":") + 1);
    const channelOptions = authority
      ? { "grpc.default_authority": `${authority}:${port}`, "grpc.ssl_target_name_override": authority, ...o.channelOptions }
      : o.channelOptions;
    this.transport =
      bridge.internals.transport?.(address) ??
      new RegisterTransport(
        address,
        {
          ...(o.credentials ? { credentials: o.credentials } : {}),
          ...(channelOptions ? { channelOptions } : {}),
          ...(o.proxy !== undefined ? { proxy: o.proxy } : {}),
          ...(o.localAddress ? { localAddress: o.localAddress } : {}),
          log: bridge.log,
        },
        { mode: o.transport ?? "auto", ...(o.h2Probe ? { h2Probe: o.h2Probe } : {}), keepaliveMs: o.keepaliveMs ?? 10_000 },
        {
          goaway: (connection) => this.onGoaway(connection),
          backToH2: () => {
            for (const s of this.slots) s.renew();
          },
          log: bridge.log,
        },
      );
    if (this.transport.proxy) bridge.log(`dialling router ${address} through proxy ${this.transport.proxy.display}`);
  }

  /**
   * The router's GOAWAY (it restarts its connection, or an HTTP/2 proxy in front does):
   * every Register stream on that connection is renewed on a fresh one, and drains once the
   * new one is registered, so calls in flight finish where they are.
   */
  private onGoaway(connection: object): void {
    if (this.bridge.stopping) return;
    for (const s of this.slots) s.renewIfOn(connection);
  }

  start(): void {
    const n = Math.max(1, this.bridge.options.streams ?? 1);
    for (let i = 0; i < n; i++) {
      const slot = new Slot(this, i, n, this.events);
      this.slots.push(slot);
      slot.connect();
    }
  }

  drain(): void {
    for (const s of this.slots) s.drain();
  }

  reportHealth(): void {
    for (const s of this.slots) s.reportHealth();
  }

  private hints = new Map<string, Promise<string | undefined>>();

  /**
   * What a failure to reach the router likely means (TLS on one side only, an untrusted
   * certificate), or undefined. Worked out once per kind of failure (it may probe the router
   * with a TLS handshake), until a stream is welcomed again.
   */
  hintFor(reason: string): Promise<string | undefined> {
    // grpc-js stamps each failure with its time; the same failure should share one hint.
    const key = reason.replace(/\(\d{4}-\d\d-\d\dT[^)]*\)/g, "");
    let hint = this.hints.get(key);
    if (!hint) {
      const tls = this.bridge.options.credentials?._isSecure() ?? false;
      hint = dialHint(this.address, tls, reason).catch(() => undefined);
      // Bounded: reasons that vary without end (ports, ids) must not grow it forever.
      if (this.hints.size >= 32) this.hints.clear();
      this.hints.set(key, hint);
    }
    return hint;
  }

  forgetHints(): void {
    this.hints.clear();
  }

  /** Some Register stream to this router is welcomed and still open. */
  registered(): boolean {
    return this.slots.some((s) => s.registered());
  }

  renew(): void {
    for (const s of this.slots) s.renew();
  }

  close(reason: string): void {
    for (const s of this.slots) s.close(reason);
    this.transport.close();
  }
}

interface SlotEvents {
  welcomed(): void;
}

/** One place in the pool: a Register stream, reconnected for as long as the bridge runs. */
class Slot {
  private conn: Connection | undefined;
  /** Connections the router drained, finishing their calls. */
  private readonly retired = new Set<Connection>();
  /** Connections replaced by update(), drained once their successor is registered. */
  private readonly renewed = new Set<Connection>();
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  everWelcomed = false;
  /**
   * The session of this slot's last registered stream when it was lost without a goodbye:
   * the next Hello names it (Hello.replaces_session) so that the router drops it at once
   * instead of holding it until its heartbeat timeout. Cleared once a successor is welcomed.
   */
  lostSession = "";

  constructor(
    readonly link: RouterLink,
    readonly index: number,
    readonly count: number,
    readonly events: SlotEvents,
  ) {}

  get bridge(): RawBridge {
    return this.link.bridge;
  }

  connect(): void {
    if (this.bridge.stopping) return;
    this.conn = new Connection(this);
    void this.conn.start();
  }

  /** The connection ended; try again after the backoff. */
  lost(conn: Connection, reason: string): void {
    this.renewed.delete(conn);
    if (this.retired.delete(conn)) return;
    if (conn !== this.conn) return;
    this.conn = undefined;
    if (conn.welcomed) this.lostSession = conn.sessionId;
    if (this.bridge.stopping) return;
    // HTTP/2 was refused on the way: the same stream goes over WebSocket at once (transport.ts).
    if (conn.fellBack) return this.connect();
    this.bridge.routerLost();
    // The router's backoff hint, when it gave one (an overloaded router spreading a wave of
    // reconnects), else our own jittered backoff. Either way the attempt counts.
    const backoff = backoffDelay(this.attempt++, this.bridge.options.backoff);
    const delay = conn.pushbackMs !== undefined ? Math.min(conn.pushbackMs, MAX_PUSHBACK_MS) : backoff;
    const retry = (hint: string | undefined) => {
      if (this.bridge.stopping || this.conn || this.timer) return;
      this.bridge.log(
        `Register stream ${this.index} to ${this.link.address} lost (${reason}); ${hint ? `${hint}; ` : ""}reconnecting in ${Math.round(delay)} ms`,
      );
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.connect();
      }, delay);
    };
    // A stream that never got a Welcome may have failed on the way in: say what is likely wrong.
    if (conn.welcomed) retry(undefined);
    else void this.link.hintFor(reason).then(retry);
  }

  /** Replaces a retiring connection with a fresh one, without waiting for a backoff. */
  replace(old: Connection): void {
    if (old !== this.conn || this.bridge.stopping) return;
    this.retired.add(old);
    this.conn = undefined;
    this.connect();
  }

  /** Renews the stream when it runs on `connection` (which the router sent GOAWAY on). */
  renewIfOn(connection: object): void {
    const c = this.conn;
    if (c?.registered && c.runsOn(connection)) {
      this.bridge.log(`router ${this.link.address} sent GOAWAY; moving Register stream ${this.index} to a new connection`);
      this.renew();
    }
  }

  /** A new Hello (update()): a fresh connection now, the old one drains when it is registered. */
  renew(): void {
    const old = this.conn;
    if (!old || this.bridge.stopping) return;
    this.retired.add(old);
    this.renewed.add(old);
    this.conn = undefined;
    this.connect();
  }

  welcomed(): void {
    // The successor is in: connections it replaces stop taking calls and end when idle.
    for (const c of this.renewed) c.retireAfterRenewal();
    this.renewed.clear();
    this.lostSession = "";
    this.attempt = 0;
    this.link.forgetHints();
    if (!this.everWelcomed) {
      this.everWelcomed = true;
      this.bridge.welcomedOnce();
      this.events.welcomed();
    }
  }

  drain(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.conn?.drain();
  }

  reportHealth(): void {
    this.conn?.reportHealth();
  }

  registered(): boolean {
    return (this.conn?.registered ?? false) || [...this.retired].some((c) => c.registered);
  }

  close(reason: string): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const c of [...this.retired]) c.close(reason, true);
    this.conn?.close(reason, true);
  }
}

/** The bridge's end: it sends InstanceFrames and reads RouterFrames. */
const BRIDGE_SIDE: EndpointSide = { sends: InstanceFrame, reads: RouterFrame, malformed: "malformed message from the router" };

/**
 * The bridge's end of one Register stream (protocol/tunnel-endpoint.ts has what both ends
 * share). Its handshake is Welcome; its calls are BridgeCalls, opened by the router's Open.
 */
class Connection extends TunnelEndpoint<BridgeCall> implements CallHost {
  readonly requestWindow: number;
  readonly maxMessageBytes: number;
  /** The stream under this end, once it is open (HTTP/2 or WebSocket: it does not matter here). */
  private stream: RegisterStream | undefined;
  /** HTTP/2 could not be established for this stream; its successor goes over WebSocket. */
  fellBack = false;
  private welcome: Welcome | undefined;
  /** We sent Drain (or were refused): Opens are refused, the router ends the stream. */
  private draining = false;
  private keepalive: TimerHandle | undefined;
  private responseWindow = 65536;
  /** The router's grpc-retry-pushback-ms when it turned this stream away. */
  pushbackMs: number | undefined;
  /** Hello.session: who this stream is, should its successor have to replace it. */
  readonly sessionId = randomUUID();

  constructor(private readonly slot: Slot) {
    super(slot.bridge.clock, BRIDGE_SIDE);
    this.requestWindow = slot.bridge.callWindow;
    this.maxMessageBytes = slot.bridge.maxMessageBytes;
  }

  protected write(message: Buffer): void {
    try {
      this.stream?.write(message);
    } catch (e) {
      this.close(`write failed: ${(e as Error).message}`);
    }
  }

  private get bridge(): RawBridge {
    return this.slot.bridge;
  }

  async start(): Promise<void> {
    const b = this.bridge;
    const o = b.options;
    let credentials: Record<string, string> = {};
    try {
      if (o.credentialsHook) credentials = await o.credentialsHook();
    } catch (e) {
      this.close(`credentials hook failed: ${(e as Error).message}`);
      return;
    }
    if (this.closed) return;
    const stream = await this.slot.link.transport.open(
      b.table.registerPath,
      { onMessage: (m) => this.receive(m), onEnd: (reason, trailers, retryNow) => this.onEnd(reason, trailers, retryNow) },
      () => this.closed,
    );
    if (!stream) return;
    if (this.closed) return stream.cancel(); // it ended while it opened
    this.stream = stream;
    this.sendHello(credentials);
  }

  /** The stream ended without this side ending it. */
  private onEnd(reason: string, trailers: grpc.Metadata | undefined, retryNow: boolean): void {
    // HTTP/2 was refused on the way: the successor goes over WebSocket at once (transport.ts).
    if (retryNow) this.fellBack = true;
    // The router's backoff hint (grpc-retry-pushback-ms) when it turned this stream away.
    const pushback = Number(trailers?.get(PUSHBACK_KEY)[0]);
    if (Number.isInteger(pushback) && pushback >= 0) this.pushbackMs = pushback;
    this.close(reason);
  }

  private sendHello(credentials: Record<string, string>): void {
    const b = this.bridge;
    const o = b.options;
    this.sender.control(
      0,
      InstanceFrame.Hello,
      HelloSchema,
      create(HelloSchema, {
        protocolVersion: ProtocolVersion.PROTOCOL_VERSION_1,
        instanceId: b.instanceId,
        service: b.table.spec.service.typeName,
        labels: o.labels ?? {},
        weight: o.weight ?? 0,
        maxConcurrentCalls: o.maxConcurrentCalls ?? 0,
        credentials,
        initialWindow: this.requestWindow,
        streamIndex: this.slot.index,
        streamCount: this.slot.count,
        description: o.description ?? `${hostname()} pid ${process.pid}`,
        session: this.sessionId,
        replacesSession: this.slot.lostSession,
      }),
    );
  }

  /**
   * Replaced by a connection with a newer Hello: Drain. The router sends no new call after
   * it reads the Drain (Opens crossing it are refused unstarted and move on) and ends the
   * stream once its calls are done, so no call is caught between the two streams.
   */
  retireAfterRenewal(): void {
    if (this.closed) return;
    this.drain();
  }

  get registered(): boolean {
    return this.phase === "open";
  }

  /** Whether the stream runs on `connection` (one the router sent GOAWAY on). */
  runsOn(connection: object): boolean {
    return this.stream?.runsOn(connection) ?? false;
  }

  /** The router welcomed this stream at some point. */
  get welcomed(): boolean {
    return this.welcome !== undefined;
  }

  /** Sends the bridge's health (after Welcome; a stream not yet welcomed reports on Welcome). */
  reportHealth(): void {
    if (this.closed || !this.welcome) return;
    const status = this.bridge.serving ? HealthReport_Status.SERVING : HealthReport_Status.NOT_SERVING;
    this.sender.control(0, InstanceFrame.Health, HealthReportSchema, create(HealthReportSchema, { status }));
  }

  drain(): void {
    if (this.closed || this.draining) return;
    this.draining = true;
    this.sender.control(0, InstanceFrame.Drain, DrainSchema, create(DrainSchema, { reason: "instance stopping" }));
  }

  // ---- CallHost ----

  ended(call: BridgeCall): void {
    if (this.calls.get(call.id) !== call) return;
    this.bridge.active--;
    this.removeCall(call.id, call); // the last call of a retiring stream closes it (idle)
    this.bridge.drained.changed();
  }

  /**
   * The router is draining this stream (shutting down, or replaced by a reloaded router on
   * the same address): a new stream registers at once, this one ends when its calls have.
   */
  private retire(): void {
    if (this.endingWhenIdle || this.closed) return;
    // The new stream goes on a new connection: on this one it would reach the draining
    // router again (to be turned away), not one that takes over (behind a load balancer).
    this.stream?.leave();
    this.slot.replace(this);
    this.endWhenIdle();
  }

  protected idle(): void {
    this.close("drained", true);
  }

  // ---- incoming (the decode loop is the endpoint's) ----

  protected onHandshakeFrame(f: Frame): void {
    if (f.call !== 0) throw new FrameError(`frame for call ${f.call} before Welcome`);
    this.onControlFrame(f);
  }

  protected onStreamFrame(f: Frame): void {
    switch (f.field) {
      case RouterFrame.Welcome:
        if (this.welcome) throw new FrameError("a second Welcome");
        return this.onWelcome(decodeControl(WelcomeSchema, f.body));
      case RouterFrame.Drain: {
        const d = decodeControl(DrainSchema, f.body);
        this.bridge.log(`router ${this.slot.link.address} is draining (${d.reason}); registering anew`);
        this.retire();
        return;
      }
      default:
        return; // a control frame from a newer protocol revision
    }
  }

  protected override onFrameWithoutCall(f: Frame): void {
    if (f.field === RouterFrame.Open) return this.onOpen(f.call, f.body);
    super.onFrameWithoutCall(f); // ended here (the router's frames cross our Trailers), or never opened
  }

  protected onCallControl(call: BridgeCall, f: Frame): void {
    switch (f.field) {
      case RouterFrame.HalfClose:
        return call.onHalfClose();
      case RouterFrame.Cancel: {
        const c = decodeControl(CancelSchema, f.body);
        return call.drop(c.reason || "cancelled", c.deadlineExceeded);
      }
      case RouterFrame.Open:
        throw new FrameError(`call id ${f.call} reused`);
      default:
        return; // a newer control frame
    }
  }

  protected onPayload(call: BridgeCall, f: Frame): void {
    if (f.field !== call.tunnelMethod.field) throw this.wrongField(f, call.tunnelMethod.field, call.method);
    call.onPayload(f.body);
  }

  private onWelcome(w: Welcome): void {
    if (!w.accepted) {
      const reason = w.reason || "no reason given";
      // No Drain on a stream the router is closing; the bridge stops without reconnecting.
      this.draining = true;
      this.bridge.refused(this.slot.link.address, reason);
      this.close(`refused: ${reason}`);
      return;
    }
    if (w.protocolVersion !== ProtocolVersion.PROTOCOL_VERSION_1) {
      // The router welcomed us in a protocol we do not speak (a newer or older release):
      // frames would be misread, so this bridge refuses it, as a router refuses a Hello of a
      // version it does not speak: final, naming both versions, so the operator upgrades one.
      const reason = `the router speaks tunnel protocol version ${w.protocolVersion}, this bridge speaks version ${ProtocolVersion.PROTOCOL_VERSION_1}; upgrade the older of the two`;
      this.draining = true;
      this.bridge.refused(this.slot.link.address, reason, true);
      this.close(reason);
      return;
    }
    this.welcome = w;
    this.phase = "open";
    this.stream?.welcomed();
    this.responseWindow = w.initialWindow || 65536;
    const asked = w.heartbeatInterval ? durationMs(w.heartbeatInterval) : 10_000;
    const interval = Math.max(10, this.bridge.options.keepaliveMs ?? asked);
    this.scheduleTick(interval);
    this.slot.welcomed();
    if (!this.bridge.serving) this.reportHealth();
    // Scale-out: register with the other routers of the deployment too.
    for (const address of w.routerAddresses) this.bridge.addRouter(address);
  }

  /** Keepalive: ping when idle either way for an interval; silent for two, the router is gone. */
  /** A quarter interval apart, on the bridge's clock: a dead router is found within about two intervals. */
  private scheduleTick(interval: number): void {
    this.keepalive = this.clock.setTimeout(
      () => {
        this.keepalive = undefined;
        if (this.closed) return;
        this.tick(interval);
        if (!this.closed) this.scheduleTick(interval);
      },
      Math.max(5, interval / 4),
    );
  }

  private tick(interval: number): void {
    const silent = this.heartbeat(this.clock.now(), interval, 2 * interval);
    if (silent === undefined) return;
    const why = `no frame from the router for ${silent} ms (keepalive ${interval} ms)`;
    // The connection under it is dead too (its other streams would say the same soon): a
    // new one, not another stream on it, is what the reconnect needs.
    this.stream?.discard(why);
    this.close(why);
  }

  private onOpen(id: number, body: Uint8Array): void {
    if (id <= this.maxCallId) throw new FrameError(`call id ${id} reused`);
    const open = decodeControl(OpenSchema, body);
    const b = this.bridge;
    const method = b.table.byPath.get(open.method);
    const deadline = open.timeout ? Date.now() + durationMs(open.timeout) : Infinity;
    const call = new BridgeCall(this, id, method ?? unknownMethod(open.method), open.metadata, deadline, open.peer, this.responseWindow);
    this.addCall(id, call);
    b.active++;
    if (!method) {
      call.finish({ code: grpc.status.UNIMPLEMENTED, details: `method ${open.method} is not served by this instance` });
      return;
    }
    const max = b.options.maxConcurrentCalls ?? 0;
    if (this.draining || b.stopping || (max > 0 && b.active > max)) {
      const refused = new grpc.Metadata();
      refused.set(REFUSED_KEY, this.draining || b.stopping ? "draining" : "busy");
      call.finish({ code: grpc.status.UNAVAILABLE, details: "grpcrouter: the instance is not taking calls", metadata: refused });
      return;
    }
    Promise.resolve()
      .then(() => b.handler(call))
      .then(
        (status: RawStatus) => call.finish(status),
        (e: unknown) => call.finish(statusOfError(e)),
      );
  }

  /** A protocol violation by the router: this stream closes (and reconnects) with the reason. */
  fail(reason: string): void {
    this.close(reason);
  }

  /** Ends the stream; in-flight calls are aborted (the router fails them for the client). */
  close(reason: string, graceful = false): void {
    if (!this.markClosed(graceful)) return;
    if (this.keepalive !== undefined) this.clock.clearTimeout(this.keepalive);
    const calls = this.takeCalls();
    this.bridge.active -= calls.length;
    for (const c of calls) c.drop(`Register stream closed: ${reason}`, false);
    if (graceful) this.stream?.end();
    else this.stream?.cancel();
    this.slot.lost(this, reason);
    this.bridge.drained.changed();
  }
}

function unknownMethod(path: string): BridgeCall["tunnelMethod"] {
  // Frames of an unknown method are never accepted: field 0 matches no payload.
  return { path, field: 0, kind: "unary", singleRequest: true, singleResponse: true } as unknown as BridgeCall["tunnelMethod"];
}

export function statusOfError(e: unknown): RawStatus {
  if (e instanceof CallError) return { code: e.code, details: e.message, ...(e.metadata ? { metadata: e.metadata } : {}) };
  const err = e as { code?: unknown; details?: unknown; message?: unknown; metadata?: unknown };
  if (typeof err?.code === "number" && Number.isInteger(err.code) && err.code > 0 && err.code <= 16) {
    return {
      code: err.code,
      details: typeof err.details === "string" ? err.details : String(err.message ?? ""),
      ...(err.metadata instanceof grpc.Metadata ? { metadata: err.metadata } : {}),
    };
  }
  return { code: grpc.status.UNKNOWN, details: e instanceof Error ? e.message : String(e) };
}
