// The instance side of the tunnel on raw bytes: registers with every router, keeping
// `streams` Register streams to each (bridge/register-connection.ts, one each: Hello →
// Welcome, then a RawHandler for every call the router opens) and replacing a lost one with
// gRPC's reconnect backoff. createBridge puts a Connect ServiceImpl on
// top; `grpcrouter bridge --target` forwards the bytes to an existing gRPC server.
import { randomUUID } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { backoffDelay, type BackoffOptions } from "../backoff.js";
import { dialHint } from "../dial-hint.js";
import type { RawHandler } from "./bridge-call.js";
import { MAX_PUSHBACK_MS } from "../registration-limits.js";
import { RegisterConnection, type ConnectionBridge, type ConnectionSlot } from "./register-connection.js";
import { RegisterTransport, type RegisterOpener } from "./register-transport.js";
import { TRANSPORT_MODES, type TransportMode } from "./transport.js";
import { tunnelTable, type TunnelSpec, type TunnelTable } from "../spec.js";
import { RouterSet, parseRouterTargets, type RouterEndpoint } from "../../discovery/router-targets.js";
import { systemClock, type Clock } from "../../resilience/clock.js";
import { Drained } from "../drained.js";

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

class RawBridge implements Bridge, ConnectionBridge {
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
          backToH2: () => this.renew(),
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
class Slot implements ConnectionSlot {
  private conn: RegisterConnection | undefined;
  /** Connections the router drained, finishing their calls. */
  private readonly retired = new Set<RegisterConnection>();
  /** Connections replaced by update(), drained once their successor is registered. */
  private readonly renewed = new Set<RegisterConnection>();
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

  get address(): string {
    return this.link.address;
  }

  get transport(): RegisterOpener {
    return this.link.transport;
  }

  connect(): void {
    if (this.bridge.stopping) return;
    this.conn = new RegisterConnection(this);
    void this.conn.start();
  }

  /** The connection ended; try again after the backoff. */
  lost(conn: RegisterConnection, reason: string): void {
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
  replace(old: RegisterConnection): void {
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
    this.renewed.add(old);
    this.replace(old);
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

export { statusOfError } from "./register-connection.js";
