// The router: serves the ORIGINAL methods of every tunnelled service to ordinary gRPC
// clients (bytes in, bytes out: payloads are never decoded) and the
// `/<routerService>/Register` stream instances dial in on, on a node:http2 server
// (http2/server.ts).
import { randomUUID } from "node:crypto";
import type { ServerHttp2Stream, IncomingHttpHeaders } from "node:http2";
import type { DescMessage, DescService, MessageShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import type { AdminHub } from "../../admin/index.js";
import { createBalancer, CustomBalancer, RoundRobinBalancer, type Balancer, type CustomPickFunction } from "../../balancer/index.js";
import { RouterByteBudget } from "../byte-budget.js";
import { InstanceClaims } from "../instance-identity.js";
import { DEFAULT_MAX_MESSAGE_BYTES, registerReceiveLimit } from "../message-limits.js";
import { RegistrationLimits, type RegistrationLimitOptions } from "../registration-limits.js";
import { rateLimitedLog } from "../../log/rate-limited-log.js";
import { auditEvent, type AuditSink } from "../../log/audit.js";
import type { ClientAuthorizer, ClientDenial } from "../../auth/client-auth.js";
import { resolveResilienceOptions, systemClock, type Clock, type ResilienceOptions, type TimerHandle } from "../../resilience/index.js";
import { parseRateLimits, RateLimiter, type RateLimitOptions } from "../rate-limit.js";
import { GrpcServer, type GrpcMethod, type ServerTls } from "../http2/server.js";
import type { ServerCall } from "../http2/server-call.js";
import type { CorsOptions } from "../http2/web-cors.js";
import { serviceActionTarget } from "./router-actions.js";
import { RoutedCall } from "./router-call.js";
import { HubCallObserver, NO_OBSERVER } from "./router-observer.js";
import type { HelloInfo, RouterContext, RouterLimits } from "./router-context.js";
import { ServiceRoute, type InstanceView } from "./router-registry.js";
import { InstanceStream, type StreamOwner } from "./router-stream.js";
import { DrainingSet } from "../drained.js";
import { tunnelTable, type TunnelMethod, type TunnelSpec, type TunnelTable } from "../spec.js";

/** Routing key of one call, computed at call start. `request` is given only for methods whose
 *  client sends ONE message (unary, server-streaming); the router decodes it only when a hook exists. */
export type RoutingKeyHook<I extends DescMessage = DescMessage> = (call: {
  method: string;
  metadata: grpc.Metadata;
  request?: MessageShape<I>;
}) => string | undefined;

export interface RouterServiceOptions<S extends DescService = DescService> {
  tunnel: TunnelSpec<S>;
  /** Keyed by method proto name ("Say"). */
  routingKeys?: Record<string, RoutingKeyHook>;
  /**
   * A Balancer, a balancer config for createBalancer (runtime/src/balancer: "least_outstanding",
   * { strategy: "consistent_hash" }, { strategy: "subset", selector: { tenant: { metadata: "x-tenant" } } }, …),
   * or a plain function (candidates, ctx) => candidate; default round robin.
   */
  balancer?: unknown;
  /** Named functions a balancer config may use with { strategy: "custom", name }. */
  customBalancers?: Record<string, CustomPickFunction>;
  /** Health, outlier ejection, limits, wait-for-ready and retries of this service; over RouterOptions.resilience. */
  resilience?: ResilienceOptions;
  /** Token-bucket limits of calls per second, for the service and per method (see RateLimitOptions). */
  rateLimit?: RateLimitOptions;
}

/** What `Router.configure` may change of a running service. */
export type ServiceSettings = Pick<RouterServiceOptions, "balancer" | "resilience" | "rateLimit"> & {
  /** Same as `resilience.waitForReady` (which wins when both are given). */
  waitForReady?: ResilienceOptions["waitForReady"];
};

export interface RouterOptions {
  services: RouterServiceOptions[];
  /** When given, the router publishes instance and call events to it. */
  hub?: AdminHub;
  logger?: (line: string) => void;
  routerId?: string;
  /** Response bytes an instance may send per call before the router grants more. Default 64 KiB. */
  callWindow?: number;
  /**
   * Response bytes the router may hold per Register stream. A stream carries at most
   * floor(streamBufferBytes / callWindow) calls at once; more go to other streams or wait.
   * Default 64 MiB (1024 calls at the default window).
   */
  streamBufferBytes?: number;
  /**
   * Decides, per call, whether the client may call this method (e.g. `clientAuthorizer`:
   * mTLS names, bearer JWTs). A denial is answered by the router; the call never reaches an
   * instance. May be swapped while the router runs with `setAuthorizeCall`.
   */
  authorizeCall?: ClientAuthorizer;
  /**
   * The audit trail: told of every registration, refusal, turn-away and departure (with the
   * instance's principal and the reason). Not rate-limited.
   */
  audit?: AuditSink;
  /**
   * Limits on registrations: Register streams per connection (default 256) and per remote
   * address (default 4096), Hellos checked per second (default 2000). Over them a stream ends
   * RESOURCE_EXHAUSTED at once (a bridge retries with backoff).
   */
  registrationLimits?: RegistrationLimitOptions;
  /**
   * Response bytes all Register streams together may hold for clients; over it, streams
   * holding any are not read until clients take their bytes. Default 1 GiB.
   */
  maxBufferedBytes?: number;
  /**
   * Frame bytes queued for one instance and not yet sent (Pongs, window updates, requests);
   * over it the router stops reading that stream, and drops it when it stays over for the
   * heartbeat timeout (an instance that does not read). Default 8 MiB.
   */
  maxQueuedBytesPerStream?: number;
  /** Frame bytes queued for all instances together; over it, streams with any queued are not read. Default 256 MiB. */
  maxQueuedBytes?: number;
  /**
   * Default of `resilience.maxPendingPerInstance` (calls queued for one instance at its
   * limit) and of wait-for-ready's `maxWaiting` (calls waiting for any instance); beyond
   * them, RESOURCE_EXHAUSTED. Default 1000.
   */
  maxPendingCalls?: number;
  /**
   * Keepalive of Register streams: the router pings a stream it has not heard from (or sent
   * to) for this long, and tells instances the interval in Welcome so that they ping too.
   * Keep it below the idle timeouts of NATs and load balancers on the path (AWS NLB 350 s,
   * many NATs 60 s). Default 10 s.
   */
  heartbeatIntervalMs?: number;
  /** A Register stream silent this long is dropped (its calls fail over). Default 2 heartbeat intervals. */
  heartbeatTimeoutMs?: number;
  /** Default 10 s. */
  helloTimeoutMs?: number;
  /** Largest client message (and payload frame) accepted by a server the router owns. Default 4 MiB. */
  maxMessageBytes?: number;
  /**
   * The OTHER routers of this deployment (host:port as instances reach them). Sent in
   * Welcome, so a bridge given one router registers with all of them.
   */
  peers?: string[];
  /**
   * Checks an instance's Hello (its credentials, and with mTLS its client certificate);
   * return a reason to refuse it. A refusal is final: the bridge stops and reports the
   * reason. A hook that throws (or rejects) only turns the instance away for now: it
   * reconnects with backoff and asks again.
   */
  authorize?: (hello: HelloInfo) => string | undefined | Promise<string | undefined>;
  /**
   * Calls that find no usable instance wait for one to register or recover, up to their
   * deadline or `maxWaitMs` (default 10 s), instead of failing UNAVAILABLE at once.
   * Default false (gRPC's fail-fast). Same as `resilience.waitForReady`.
   */
  waitForReady?: boolean | { maxWaitMs?: number; maxWaiting?: number };
  /**
   * Health and resilience of every service (runtime/src/resilience): outlier ejection
   * (`outlier`), per-instance limits (`maxConcurrentCallsPerInstance`, `maxPendingPerInstance`),
   * wait-for-ready, retries of UNAVAILABLE for idempotent methods and their budget (`retry`).
   */
  resilience?: ResilienceOptions;
  /**
   * The router's time: heartbeats and the Hello timeout, call deadlines, outlier ejections
   * and their return, queue and wait-for-ready waits, retry backoff and budgets. Default: the
   * system clock. Tests pass a ManualClock to drive these instead of waiting for them
   * (instances answer pings in real time: advance it a heartbeat interval at a time, or
   * silent-looking instances are dropped).
   */
  clock?: Clock;
  /** CORS of gRPC-Web and Connect calls from browsers when the router listens itself (grpc-web; http2/web-cors.ts). */
  cors?: CorsOptions;
  /** Register streams over WebSocket on the router's own port (listen); default true. See GrpcServerOptions.websocket. */
  websocket?: boolean;
  /**
   * Told when a service gains its first instance taking calls (SERVING, not draining) or
   * loses its last one: what grpc.health.v1 reports for it (`grpcrouter serve` feeds its
   * RouterHealth from here). Kept as a count, so 10,000 registrations cost nothing extra.
   */
  onServingChange?: (service: string, serving: boolean) => void;
}

export interface RouterStats {
  /** Response bytes held for clients (received from instances, not yet granted back). */
  bufferedBytes: number;
  /** Frame bytes written to Register streams and not yet sent. */
  queuedBytes: number;
  /** Register streams the router is not reading now (over a byte bound). */
  pausedStreams: number;
  /** Per Register stream. */
  streams: Array<{
    service: string;
    instanceId: string;
    calls: number;
    bufferedBytes: number;
    queuedBytes: number;
    paused: boolean;
    /** Milliseconds since the last frame from the instance (on the router's clock): a healthy stream stays below the heartbeat interval plus a round trip. */
    silentMs: number;
  }>;
  callsInFlight: number;
  callsPending: number;
}

export interface Router {
  /**
   * Starts a node:http2 server the router owns. Default address "0.0.0.0:0"; plaintext (h2c)
   * unless `tls` is given: grpc-js ServerCredentials (e.g. loadServerCredentials) or node's
   * http2.SecureServerOptions (then `requestCert` + `ca` for mTLS).
   */
  listen(address?: string, tls?: ServerTls): Promise<{ port: number; address: string }>;
  /**
   * Mounts the router's methods on a grpcrouter GrpcServer (one port for several routers and
   * for health, reflection, Admin). Unmount with `server.remove(path)` for each of `paths`.
   */
  addTo(server: GrpcServer): void;
  /** The paths the router serves: its services' methods and their Register streams. */
  readonly paths: readonly string[];
  /**
   * The router as a listener of an http2 server of your own:
   * `http2.createServer().on("stream", router.handler)` (or createSecureServer). Streams for
   * paths the router does not serve are answered UNIMPLEMENTED.
   */
  readonly handler: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]) => void;
  /**
   * Graceful shutdown: new calls are refused (UNAVAILABLE), instances are told to drain (a
   * bridge registers anew elsewhere / with the router that replaces this one), calls in
   * flight get `graceMs` (default 5000) to finish, then the rest are cancelled and it stops.
   */
  close(graceMs?: number): Promise<void>;
  /** The same as close(graceMs): what a process does on SIGTERM. */
  drain(graceMs?: number): Promise<void>;
  instances(service?: string): InstanceView[];
  /**
   * Whether `service` has an instance taking calls now (what grpc.health.v1 reports). Stops
   * at the first one, without building views: cheap enough to ask on every registration.
   */
  hasServingInstance(service: string): boolean;
  stats(): RouterStats;
  /**
   * Replaces a service's balancer, resilience settings and rate limits while it runs, as if
   * the service had been created with them (settings left out go back to their defaults;
   * RouterOptions.resilience and waitForReady still apply underneath). Registered
   * instances, their health and ejections, and calls in flight or queued stay; new calls
   * and attempts use the new settings. Invalid settings throw an error naming the field
   * (`balancer.strategy: …`, `resilience.retry.maxAttempts: …`, `rateLimit.burst: …`) and
   * change nothing.
   */
  configure(service: string, settings: ServiceSettings): void;
  /** Replaces the client authorization of new calls (undefined: every client may call). */
  setAuthorizeCall(authorize: ClientAuthorizer | undefined): void;
  /** The services the router routes now. */
  readonly services: readonly string[];
  /**
   * Routes one more service from now on: its methods and Register stream are mounted on the
   * router's server at once. Invalid settings throw naming the field; so does a service the
   * router routes already (see `replaceService`).
   */
  addService(service: RouterServiceOptions): void;
  /**
   * A new definition of a routed service (a reloaded proto: methods added, removed or
   * changed; new settings): new calls use it at once, while its registered instances, their
   * health and ejections, and its calls in flight or queued stay. Only when a method both
   * definitions have changes its frame field or kind (or the Register path changes) can the
   * registered instances not serve the new definition: they are told to drain, so their
   * bridges register anew; calls in flight on them still finish.
   */
  replaceService(service: RouterServiceOptions): void;
  /**
   * Stops routing a service: its methods are unmounted (new calls: UNIMPLEMENTED), calls
   * waiting for an instance fail UNAVAILABLE, its instances are told to drain, and calls in
   * flight get `graceMs` (default 10 s) before they are cancelled. Resolves when its last
   * Register stream is gone.
   */
  removeService(service: string, graceMs?: number): Promise<void>;
}

export function createRouter(options: RouterOptions): Router {
  return new RouterImpl(options);
}

class RouterImpl implements Router {
  private readonly ctx: RouterContext;
  /** By service name; a service's route lives as long as the router routes it (replaceService keeps it). */
  private readonly routes = new Map<string, ServiceRoute>();
  /** The options each service was given last (configure starts from them). */
  private readonly serviceOptions = new Map<string, RouterServiceOptions>();
  private readonly streams = new Set<InstanceStream>();
  /** Told when a Register stream is over (one object for all of them). */
  private readonly streamOwner: StreamOwner = {
    streamClosed: (s) => {
      this.streams.delete(s);
      this.ctx.registrations.close(s.peer);
    },
  };
  private server: GrpcServer | undefined;
  private ownsServer = false;
  private heartbeat: TimerHandle | undefined;
  private readonly pendingCount = { n: 0 };
  private readonly maxMessageBytes: number;
  private readonly options: RouterOptions;
  private authorizeCall: ClientAuthorizer | undefined;
  /** Withdraws this router's services from the hub's operator actions (on close). */
  /** Per service: takes its operator actions back (the service is removed or the router closes). */
  private readonly withdrawActions = new Map<string, () => void>();

  constructor(options: RouterOptions) {
    const callWindow = options.callWindow ?? 65536;
    const clock = options.clock ?? systemClock;
    const interval = options.heartbeatIntervalMs ?? 10_000;
    const limits: RouterLimits = {
      callWindow,
      callsPerStream: Math.max(1, Math.floor((options.streamBufferBytes ?? 64 * 1024 * 1024) / callWindow)),
      maxPendingCalls: options.maxPendingCalls ?? 1000,
      heartbeatIntervalMs: interval,
      heartbeatTimeoutMs: options.heartbeatTimeoutMs ?? 2 * interval,
      helloTimeoutMs: options.helloTimeoutMs ?? 10_000,
      maxMessageBytes: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    };
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.options = options;
    this.authorizeCall = options.authorizeCall;
    let hubIds = 0;
    // security: one line per kind of event, then a count (log/rate-limited-log.ts).
    const logger = rateLimitedLog(options.logger ?? ((line: string) => console.error(`grpcrouter: ${line}`)));
    this.ctx = {
      routerId: options.routerId ?? randomUUID(),
      limits,
      hub: options.hub,
      observer: options.hub ? new HubCallObserver(options.hub) : NO_OBSERVER,
      log: logger,
      authorize: options.authorize,
      peers: options.peers ?? [],
      claims: new InstanceClaims(),
      audit: (kind, fields) => options.audit?.(auditEvent(kind, fields)),
      registrations: new RegistrationLimits(options.registrationLimits),
      budget: new RouterByteBudget(
        {
          streamBufferBytes: options.streamBufferBytes ?? 64 * 1024 * 1024,
          routerBufferBytes: options.maxBufferedBytes ?? 1024 * 1024 * 1024,
          queuedBytesPerStream: options.maxQueuedBytesPerStream ?? 8 * 1024 * 1024,
          routerQueuedBytes: options.maxQueuedBytes ?? 256 * 1024 * 1024,
        },
        () => clock.now(),
      ),
      clock,
      nextHubCallId: () => ++hubIds,
      active: new DrainingSet(),
      closing: false,
    };
    for (const s of options.services) {
      const name = s.tunnel.service.typeName;
      if (this.routes.has(name)) throw new Error(`service ${name} is given twice`);
      this.routes.set(name, this.newRoute(s, name));
      this.serviceOptions.set(name, s);
    }
    this.publishServices();
    for (const route of this.routes.values()) this.offerActions(route);
  }

  /** Operators act on a service through the hub's Admin service and dashboard (admin/actions.ts). */
  private offerActions(route: ServiceRoute): void {
    const actions = this.options.hub?.actions;
    if (!actions) return;
    const dispatch = (call: ServerCall, request: Buffer | undefined): boolean => {
      const m = route.table.byPath.get(call.path);
      if (!m || this.ctx.closing || this.routes.get(route.serviceName) !== route) return false;
      this.methodFor(route, m).handle(call, request);
      return true;
    };
    this.withdrawActions.set(route.serviceName, actions.register(serviceActionTarget(route, this.ctx, this.options.audit, dispatch)));
  }

  /** A service's route with its settings (which throw, naming the service, when invalid). */
  private newRoute(s: RouterServiceOptions, name: string): ServiceRoute {
    const resilience = resilienceOf(this.options, s, this.ctx.limits);
    const limiter = limiterOf(s.rateLimit, s.tunnel, name);
    const balancer = balancerOf(s.balancer, s.customBalancers, name);
    return new ServiceRoute(
      this.ctx,
      tunnelTable(s.tunnel),
      balancer,
      s.routingKeys ?? {},
      resilience,
      this.pendingCount,
      limiter,
      this.options.onServingChange,
    );
  }

  /** The hub's list of services (the dashboard's and Admin snapshot's). */
  private publishServices(): void {
    this.options.hub?.setServices([...this.routes.values()].map((r) => ({ name: r.serviceName, methods: r.table.spec.service.methods.map((m) => m.name) })));
  }

  get services(): string[] {
    return [...this.routes.keys()];
  }

  get paths(): string[] {
    return [...this.routes.values()].flatMap((r) => [...r.table.byPath.keys(), r.table.registerPath]);
  }

  addTo(server: GrpcServer): void {
    this.server = server;
    for (const route of this.routes.values()) this.mount(route);
    this.startHeartbeat();
  }

  /** Mounts a route's methods and Register stream on the server (when the router has one). */
  private mount(route: ServiceRoute): void {
    const server = this.server;
    if (!server) return;
    for (const m of route.table.byPath.values()) server.add(m.path, this.methodFor(route, m));
    server.add(route.table.registerPath, {
      singleRequest: false,
      // A payload plus its frame header (message-limits.ts): a maximal response must never
      // close its instance's Register stream.
      maxRequestBytes: registerReceiveLimit(this.maxMessageBytes),
      handle: (call) => this.onRegister(route, call),
      websocket: true, // the same stream over WebSocket where only HTTP/1.1 gets through
      ignoresMetadata: true, // what a Register stream needs is in its Hello
    });
  }

  /** New calls and new Register streams of these paths are no longer the router's. */
  private unmount(table: TunnelTable): void {
    if (!this.server) return;
    for (const p of table.byPath.keys()) this.server.remove(p);
    this.server.remove(table.registerPath);
  }

  addService(service: RouterServiceOptions): void {
    const name = service.tunnel.service.typeName;
    if (this.routes.has(name)) throw new Error(`addService: the router routes ${name} already (replaceService changes it)`);
    if (this.ctx.closing) throw new Error("addService: the router is shutting down");
    const route = this.newRoute(service, name);
    this.routes.set(name, route);
    this.serviceOptions.set(name, service);
    this.mount(route);
    this.publishServices();
    this.offerActions(route);
    this.ctx.log(`routing ${name}`);
  }

  replaceService(service: RouterServiceOptions): void {
    const name = service.tunnel.service.typeName;
    const route = this.routes.get(name);
    if (!route) throw new Error(`replaceService: the router has no service ${JSON.stringify(name)} (addService adds one)`);
    // Everything is built (and so validated) before anything changes.
    const table = tunnelTable(service.tunnel);
    const balancer = balancerOf(service.balancer, service.customBalancers, name);
    const resolved = resolveResilienceOptions(resilienceOf(this.options, service, this.ctx.limits));
    const limiter = limiterOf(service.rateLimit, service.tunnel, name);
    const previous = route.table;
    this.unmount(previous);
    const kept = route.replaceService(table, service.routingKeys ?? {});
    route.reconfigure(balancer, resolved, limiter);
    this.serviceOptions.set(name, service);
    this.mount(route);
    this.publishServices();
    this.ctx.log(`replaced ${name}${kept ? "" : ": its methods changed frame fields, so its instances were told to drain and register anew"}`);
  }

  async removeService(service: string, graceMs = 10_000): Promise<void> {
    const route = this.routes.get(service);
    if (!route) throw new Error(`removeService: the router has no service ${JSON.stringify(service)}`);
    this.routes.delete(service);
    this.serviceOptions.delete(service);
    this.unmount(route.table);
    this.publishServices();
    this.withdrawActions.get(service)?.();
    this.withdrawActions.delete(service);
    this.ctx.log(`stopped routing ${service}`);
    const streams = [...this.streams].filter((s) => s.route === route);
    for (const s of streams) s.drain(`the router no longer routes ${service}`, graceMs);
    route.close(`the router no longer routes ${service}`);
    // The service is unmounted, so no call joins these; each wake drops the ended ones from the
    // front and stops at the first still running, not rescanning every call in the router.
    const left = new Set([...this.ctx.active].filter((c) => c instanceof RoutedCall && c.route === route));
    const idle = () => {
      for (const c of left) {
        if (this.ctx.active.has(c)) return false;
        left.delete(c);
      }
      return true;
    };
    await this.ctx.active.drained.wait(idle, graceMs, this.ctx.clock);
    for (const c of [...this.ctx.active]) if (c instanceof RoutedCall && c.route === route) c.abortForShutdown();
    for (const s of streams) s.end();
  }

  get handler(): Router["handler"] {
    return this.ownServer().onStream;
  }

  private ownServer(): GrpcServer {
    if (!this.server) {
      this.addTo(new GrpcServer({ cors: this.options.cors, ...(this.options.websocket === false ? { websocket: false } : {}) })); // grpc-web: cors
      this.ownsServer = true;
    }
    if (!this.ownsServer) throw new Error("this router is mounted on a server of its own (addTo); use that server's onStream");
    return this.server!;
  }

  async listen(address = "0.0.0.0:0", tls?: ServerTls): Promise<{ port: number; address: string }> {
    return this.ownServer().listen(address, tls);
  }

  instances(service?: string): InstanceView[] {
    return [...this.routes.values()].filter((r) => service === undefined || r.serviceName === service).flatMap((r) => r.views());
  }

  hasServingInstance(service: string): boolean {
    return this.routes.get(service)?.hasServingInstance() ?? false;
  }

  configure(service: string, settings: ServiceSettings): void {
    const route = this.routes.get(service);
    const s = this.serviceOptions.get(service);
    if (!route || !s) throw new Error(`configure: the router has no service ${JSON.stringify(service)} (it routes ${[...this.routes.keys()].join(", ")})`);
    const next: RouterServiceOptions = { ...s, balancer: settings.balancer, resilience: settings.resilience, rateLimit: settings.rateLimit };
    if (settings.waitForReady !== undefined) next.resilience = { waitForReady: settings.waitForReady, ...settings.resilience };
    // Everything is built (and so validated) before anything changes.
    const balancer = balancerOf(next.balancer, s.customBalancers, undefined);
    const resolved = resolveResilienceOptions(resilienceOf(this.options, next, this.ctx.limits));
    const limiter = limiterOf(next.rateLimit, s.tunnel, undefined);
    route.reconfigure(balancer, resolved, limiter);
    this.serviceOptions.set(service, next);
    this.ctx.log(`reconfigured ${service}: balancer ${balancer.describe()}${limiter ? ", rate limited" : ""}`);
  }

  setAuthorizeCall(authorize: ClientAuthorizer | undefined): void {
    this.authorizeCall = authorize;
  }

  stats(): RouterStats {
    // A stream closed by the router may linger in the set until grpc-js reports its end.
    const now = this.ctx.clock.now();
    const streams = [...this.streams]
      .filter((s) => !s.closed)
      .map((s) => ({
        service: s.route.serviceName,
        instanceId: s.instanceId,
        calls: s.calls.size,
        bufferedBytes: s.bufferedBytes(),
        queuedBytes: s.meter.queued,
        paused: s.meter.paused,
        silentMs: now - s.lastReceived,
      }));
    return {
      bufferedBytes: streams.reduce((n, s) => n + s.bufferedBytes, 0),
      queuedBytes: streams.reduce((n, s) => n + s.queuedBytes, 0),
      pausedStreams: streams.filter((s) => s.paused).length,
      streams,
      callsInFlight: this.ctx.active.size - this.pendingCount.n,
      callsPending: this.pendingCount.n,
    };
  }

  async close(graceMs = 5000): Promise<void> {
    if (this.ctx.closing) return;
    this.ctx.closing = true;
    for (const withdraw of this.withdrawActions.values()) withdraw();
    this.withdrawActions.clear();
    const until = this.ctx.clock.now() + graceMs;
    for (const r of this.routes.values()) r.close();
    await this.drainSpread(graceMs);
    await this.ctx.active.drained.wait(() => this.ctx.active.size === 0, until - this.ctx.clock.now(), this.ctx.clock);
    for (const c of [...this.ctx.active]) c.abortForShutdown();
    if (this.heartbeat) this.ctx.clock.clearTimeout(this.heartbeat);
    this.heartbeat = undefined;
    for (const s of [...this.streams]) s.end();
    // GOAWAY on every connection; those still open after a second are closed.
    if (this.server && this.ownsServer) await this.server.close(1000);
  }

  /**
   * Tells every instance to move (Drain), each at a random moment of a window as long as
   * this router needs to admit that many Hellos (registrationLimits.hellosPerSecond, at most
   * `graceMs`): routers taking them over see them arrive at a rate they admit, not as one
   * wave. Routing stopped already; calls in flight go on meanwhile.
   */
  private drainSpread(graceMs: number): Promise<void> {
    const streams = [...this.streams];
    const windowMs = Math.min(graceMs, (streams.length * 1000) / this.ctx.registrations.hellosPerSecond);
    if (windowMs < 1) {
      for (const s of streams) s.drain("router shutting down", graceMs);
      return Promise.resolve();
    }
    return Promise.all(
      streams.map(
        (s) =>
          new Promise<void>((resolve) =>
            setTimeout(() => {
              s.drain("router shutting down", graceMs);
              resolve();
            }, Math.random() * windowMs),
          ),
      ),
    ).then(() => {});
  }

  drain(graceMs?: number): Promise<void> {
    return this.close(graceMs);
  }

  // ---- handlers ----

  private onRegister(route: ServiceRoute, call: ServerCall): void {
    // security: Register streams per connection and per address (registration-limits.ts).
    const peer = call.peer;
    const over = this.ctx.registrations.open(peer);
    if (over !== undefined) {
      this.ctx.log(`refused a Register stream from ${peer}: ${over}`);
      this.ctx.audit("refused", { service: route.serviceName, peer, reason: over });
      call.end(grpc.status.RESOURCE_EXHAUSTED, `grpcrouter: ${over}`);
      return;
    }
    this.streams.add(new InstanceStream(this.ctx, route, call, this.streamOwner));
  }

  private methodFor(route: ServiceRoute, m: TunnelMethod): GrpcMethod {
    return {
      singleRequest: m.singleRequest,
      // An oversized request message fails its call only, RESOURCE_EXHAUSTED naming size and limit.
      maxRequestBytes: this.maxMessageBytes,
      desc: m.method, // grpc-web: method kind and JSON types for gRPC-Web/Connect
      handle: (client, request) => {
        const call = new RoutedCall(this.ctx, route, m, client, request);
        this.ctx.active.add(call);
        const authorize = this.authorizeCall;
        if (!authorize) return this.startCall(route, call, request);
        // security: client authorization (auth/client-auth.ts) before any instance is involved.
        void this.authorizeThenStart(authorize, route, m, call, request);
      },
    };
  }

  private startCall(route: ServiceRoute, call: RoutedCall, request: Buffer | undefined): void {
    call.routingKey = route.routingKeyOf(call, request);
    call.start();
  }

  private async authorizeThenStart(
    authorize: ClientAuthorizer,
    route: ServiceRoute,
    m: TunnelMethod,
    call: RoutedCall,
    request: Buffer | undefined,
  ): Promise<void> {
    let denied: ClientDenial | undefined;
    try {
      const auth = call.client.metadata.get("authorization")[0];
      denied = await authorize({
        service: route.serviceName,
        method: m.method.name,
        authorization: typeof auth === "string" ? auth : undefined,
        certificate: call.client.peerCertificate(),
      });
    } catch (e) {
      denied = { code: "UNAUTHENTICATED", message: `grpcrouter: client authorization failed: ${(e as Error).message}` };
    }
    if (call.isFinished) return;
    if (denied) return call.fail(denied.code === "UNAUTHENTICATED" ? grpc.status.UNAUTHENTICATED : grpc.status.PERMISSION_DENIED, denied.message);
    this.startCall(route, call, request);
  }

  /**
   * One timer for all Register streams (not one per stream: a router holds thousands), on
   * the router's clock. A quarter interval apart, so a dead peer is found within about two
   * intervals of its last frame (InstanceStream.tick).
   */
  private startHeartbeat(): void {
    if (this.heartbeat || this.ctx.closing) return;
    const clock = this.ctx.clock;
    const every = Math.max(10, Math.min(this.ctx.limits.heartbeatIntervalMs, this.ctx.limits.heartbeatTimeoutMs) / 4);
    const sweep = () => {
      if (this.heartbeat === undefined) return; // closed
      const now = clock.now();
      for (const s of this.streams) s.tick(now);
      this.heartbeat = clock.setTimeout(sweep, every);
    };
    this.heartbeat = clock.setTimeout(sweep, every);
  }
}

function balancerOf(config: unknown, custom: Record<string, CustomPickFunction> | undefined, service: string | undefined): Balancer {
  if (config === undefined) return new RoundRobinBalancer();
  if (typeof config === "function") return new CustomBalancer(config as CustomPickFunction, config.name || "custom");
  if (typeof config === "object" && config !== null && typeof (config as Balancer).pick === "function") return config as Balancer;
  return createBalancer(config, { ...(custom ? { custom } : {}), ...(service !== undefined ? { source: service } : {}) });
}

function limiterOf(config: RateLimitOptions | undefined, tunnel: TunnelSpec, service: string | undefined): RateLimiter | undefined {
  if (config === undefined) return undefined;
  try {
    return new RateLimiter(
      tunnel.service.typeName,
      parseRateLimits(
        config,
        "rateLimit",
        tunnel.service.methods.map((m) => m.name),
      ),
    );
  } catch (e) {
    if (service !== undefined && e instanceof Error) e.message = `${service}: ${e.message}`;
    throw e;
  }
}

/** The pool's options: the router's limits as defaults, then the router's, then the service's settings. */
function resilienceOf(options: RouterOptions, s: RouterServiceOptions, limits: RouterLimits): ResilienceOptions {
  const r = { ...options.resilience, ...s.resilience };
  const wfr = r.waitForReady ?? options.waitForReady ?? false;
  return {
    heartbeatTimeoutMs: limits.heartbeatTimeoutMs,
    maxPendingPerInstance: limits.maxPendingCalls,
    ...r,
    waitForReady: typeof wfr === "object" ? { maxWaiting: limits.maxPendingCalls, ...wfr } : wfr,
  };
}
