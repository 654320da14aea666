// `grpcrouter serve`: a router for every service of a proto module, straight from its
// descriptors, with server reflection, grpc.health.v1, the Admin service and the web
// dashboard, reloading when the module's .proto files change.
//
// Each service gets a router of its own on one shared node:http2 gRPC server (GrpcServer), so a reload replaces
// only the services whose tunnel changed (methods, field numbers): the others keep their
// registered instances and live calls. A module that no longer compiles keeps the running
// configuration and prints the diagnostics.
import { appendFileSync, closeSync, openSync, watch, type FSWatcher } from "node:fs";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { formatDiagnostic, hasErrors, type Diagnostic } from "@grpcrouter/generator";
import {
  AdminHub,
  GrpcServer,
  RouterHealth,
  addAdminService,
  addReflection,
  checkRouterConfig,
  createRouter,
  createRouterMetrics,
  createRouterTracing,
  describeFromRegistry,
  auditEvent,
  auditJsonLine,
  clientAuthorizer,
  type ClientAuthorizer,
  formatLogger,
  loadRouterConfig,
  parseLogFormat,
  type AuditSink,
  type LogFormat,
  parseRouterTargets,
  RouterSet,
  settingsFor,
  startDashboard,
  startMetricsServer,
  type Dashboard,
  type MetricsServer,
  type RouterConfig,
  type RouterMetrics,
  type Router,
  type RouterOptions,
  type TunnelSpec,
} from "@grpcrouter/runtime";
import { UsageError, type Command, type Io } from "../command.js";
import { moduleArgs } from "./module-args.js";
import { loadServedModule, type ServedModule } from "./serve-module.js";
import { serveSecurity, serveSecurityDetails, serveSecurityOptions } from "./tls.js";

export function portArg(values: Record<string, string | boolean | undefined>, name: string, fallback: number): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (typeof raw !== "string" || !/^\d+$/.test(raw) || n > 65535) throw new UsageError(`--${name} ${String(raw)}: not a port (0..65535)`);
  return n;
}

function printDiagnostics(diagnostics: readonly Diagnostic[], root: string, io: Io): void {
  for (const d of diagnostics) {
    const file = d.file ? path.relative(io.cwd, path.join(root, d.file)) : "";
    io.stderr.write(formatDiagnostic({ ...d, file }) + "\n");
  }
}

interface Routed {
  key: string;
  router: Router;
  scope: number;
}

export interface ServeOptions {
  root: string;
  out: string;
  host: string;
  port: number;
  /** The dashboard's port; undefined: no dashboard. */
  adminPort: number | undefined;
  /** A port of its own for Prometheus' /metrics, on `host` (the dashboard's is loopback only). */
  metricsPort?: number | undefined;
  /** Reload on .proto changes. */
  watch: boolean;
  io: Io;
  /** TLS for the router's port (clients, instances, reflection, health, Admin); default plaintext. */
  credentials?: grpc.ServerCredentials | undefined;
  /** Checks each instance's Hello (e.g. a token authorizer); default: every instance may register. */
  authorize?: RouterOptions["authorize"];
  /** Serve grpcrouter.v1.Admin on a non-loopback `host` too (it shows call metadata and bodies). */
  publicAdmin?: boolean;
  /** Register streams over WebSocket (HTTP/1.1 Upgrade) on the router's port; default true. */
  websocket?: boolean;
  /** A router config file (JSON: balancer, resilience, waitForReady, rate limits per service);
   *  re-applied through Router.configure when it changes (with `watch`). */
  configFile?: string | undefined;
  /** Log lines as text (default) or one JSON object per line. */
  logFormat?: LogFormat;
  /** The audit trail: registrations, refusals, departures, config changes (e.g. JSON lines to --audit-log). */
  audit?: AuditSink | undefined;
  /** The other routers of this deployment (host:port as instances reach them), sent to
   *  bridges in Welcome so a bridge given one router registers with all of them. */
  peers?: readonly string[] | undefined;
  /** A name (`name:port`, or gRPC's `dns:///name:port`) resolving to every router of the
   *  deployment (a headless Service), re-resolved every 30 s; added to `peers`. */
  peersDns?: string | undefined;
  /** Keepalive of Register streams (RouterOptions.heartbeatIntervalMs), told to bridges in Welcome; default 10 s. */
  keepaliveMs?: number | undefined;
}

/** Only callers on this machine can reach a router bound to one of these. */
function isLoopbackHost(host: string): boolean {
  return host === "localhost" || host === "::1" || host === "[::1]" || /^127\./.test(host);
}

export interface RunningServer {
  address: string;
  dashboardUrl: string | undefined;
  /** Where Prometheus scrapes: the metrics port's /metrics, else the dashboard's. */
  metricsUrl: string | undefined;
  /** Drains: stops accepting, lets calls in flight finish for up to `graceMs` (default 10 s), tells bridges to move. */
  close(graceMs?: number): Promise<void>;
}

/** Starts everything; resolves once the router listens (rejects when the module does not compile). */
export async function startServe(options: ServeOptions): Promise<RunningServer> {
  const { io, root } = options;
  const log = formatLogger(options.logFormat ?? "text", (text) => void io.stderr.write(text));
  // One array for every router of this process: Welcome reads it when it is sent, so a
  // re-resolved --peers-dns reaches the next bridges that register.
  const peers: string[] = [...(options.peers ?? [])];
  const peerSet = options.peersDns
    ? new RouterSet(options.peersDns.startsWith("dns:") ? options.peersDns : `dns:///${options.peersDns}`, {
        logger: (line) => log(`peers: ${line}`),
        onChange: () => peers.splice(0, peers.length, ...new Set([...(options.peers ?? []), ...peerSet!.endpoints.map((e) => e.address)])),
      })
    : undefined;
  peerSet?.start().catch((e: unknown) => log(`peers: ${(e as Error).message}; retrying every 30 s`));
  const first = await loadServedModule({ root, out: options.out });
  if (!first.ok) {
    printDiagnostics(first.diagnostics, root, io);
    throw new Error(`${root} does not compile to a routable module; nothing started`);
  }
  printDiagnostics(first.module.diagnostics, root, io);
  let current: ServedModule = first.module;
  const configFile = options.configFile;
  const configName = configFile ? path.relative(io.cwd, configFile) || configFile : "";
  const servedServices = (m: ServedModule) => m.specs.map((s) => ({ name: s.service.typeName, methods: s.service.methods.map((x) => x.name) }));
  // A bad config file at start fails before anything listens; later, a bad edit keeps this one.
  let config: RouterConfig = { services: {} };
  if (configFile) {
    config = await loadRouterConfig(configFile, configName);
    for (const note of checkRouterConfig(config, servedServices(current), configName)) log(note);
  }

  // Client authorization from the config (clientAuth), swapped into every router on reload.
  const configDir = configFile ? path.dirname(configFile) : io.cwd;
  const buildClientAuth = (c: RouterConfig): ClientAuthorizer | undefined => {
    if (!c.clientAuth) return undefined;
    const jwks = c.clientAuth.jwks?.file ? { file: path.resolve(configDir, c.clientAuth.jwks.file) } : c.clientAuth.jwks;
    return clientAuthorizer({ ...c.clientAuth, ...(jwks ? { jwks } : {}) });
  };
  let clientAuth: ClientAuthorizer | undefined;
  try {
    clientAuth = buildClientAuth(config);
  } catch (e) {
    throw new Error(`${configName}: ${(e as Error).message}`);
  }
  const hub = new AdminHub({ describe: (method) => describeFromRegistry(current.registry)(method) });
  // Before the routers, so they count from the first call.
  const metrics: RouterMetrics | undefined =
    options.adminPort !== undefined || options.metricsPort !== undefined ? createRouterMetrics({ hub }) : undefined;
  // A span per call through the global OpenTelemetry API: a no-op unless an SDK is preloaded
  // (e.g. NODE_OPTIONS="--import @opentelemetry/auto-instrumentations-node/register", with
  // OTEL_NODE_DISABLED_INSTRUMENTATIONS=grpc so grpc-js is not traced a second time).
  const tracing = createRouterTracing({ hub });
  const health = new RouterHealth([]);
  const server = new GrpcServer({ cors: config.cors, ...(options.websocket === false ? { websocket: false } : {}) });
  const setReflection = addReflection(server, current.files, current.services.map((s) => s.name));
  health.addTo(server);
  // The Admin service streams every call's metadata and bodies: on a port other machines can
  // reach it is opt-in. The dashboard (loopback only) does not need it.
  if (isLoopbackHost(options.host) || options.publicAdmin) addAdminService(server, hub, { onRequest: (method) => metrics?.countAdminRequest(method) });
  else log(`grpcrouter.v1.Admin is not served on ${options.host} (it shows call metadata and bodies); --public-admin serves it`);

  const routed = new Map<string, Routed>();
  const closing = new Set<Promise<void>>();
  let nextScope = 1;

  const updateHealth = (service: string) => {
    const r = routed.get(service);
    if (r) health.set(service, r.router.hasServingInstance(service));
  };

  /** Mounts `module`'s services: new and changed ones get a fresh router, unchanged ones stay. */
  const apply = (module: ServedModule): { added: string[]; replaced: string[]; removed: string[] } => {
    const added: string[] = [];
    const replaced: string[] = [];
    const removed: string[] = [];
    const wanted = new Map(module.specs.map((s) => [s.service.typeName, s]));
    for (const [service, r] of routed) {
      const key = module.serviceKeys.get(service);
      if (key === r.key) continue;
      // New calls stop reaching the old router at once; its calls get a grace period and
      // its instances are told to drain, so their bridges re-register with the new one.
      for (const p of r.router.paths) server.remove(p);
      const done = r.router.close(10_000).catch((e: unknown) => log(`closing the router of ${service}: ${String(e)}`));
      closing.add(done);
      void done.finally(() => closing.delete(done));
      hub.scoped(r.scope).setServices([]);
      routed.delete(service);
      if (key === undefined) {
        removed.push(service);
        health.remove(service);
      } else replaced.push(service);
    }
    for (const [service, spec] of wanted) {
      if (routed.has(service)) continue;
      const scope = nextScope;
      nextScope = (nextScope % 0xffff) + 1;
      routed.set(service, { key: module.serviceKeys.get(service)!, router: mount(spec, scope), scope });
      health.set(service, false);
      if (!replaced.includes(service)) added.push(service);
    }
    setReflection(module.files, module.services.map((s) => s.name));
    hub.resetSchemas();
    return { added, replaced, removed };
  };

  const mount = (spec: TunnelSpec, scope: number): Router => {
    const router = createRouter({
      services: [{ tunnel: spec }],
      hub: hub.scoped(scope),
      logger: log,
      peers,
      ...(options.keepaliveMs ? { heartbeatIntervalMs: options.keepaliveMs } : {}),
      ...(options.authorize ? { authorize: options.authorize } : {}),
      ...(options.audit ? { audit: options.audit } : {}),
      ...(clientAuth ? { authorizeCall: clientAuth } : {}),
    });
    configureRouter(router, spec.service.typeName, "start");
    router.addTo(server);
    return router;
  };

  /** Applies the config's settings for `service`: to a new router (nothing to do without
   *  settings), or to a running one after the file changed. */
  function configureRouter(router: Router, service: string, when: "start" | "reload"): void {
    const settings = settingsFor(config, service);
    if (when === "start" && Object.keys(settings).length === 0) return;
    try {
      router.configure(service, settings);
    } catch (e) {
      // Only reachable when a proto reload dropped a method the config limits: the config was
      // checked against the module it was loaded with.
      const outcome = when === "start" ? "it runs with the default settings" : "it keeps its previous settings";
      log(`${configName}: services[${JSON.stringify(service)}]: ${(e as Error).message}; ${outcome}`);
    }
  }

  apply(current);

  // Health follows instances as the routers report them to the hub.
  const healthWatcher = hub.watch({});
  void (async () => {
    for await (const ev of healthWatcher) {
      const c = ev.event.case;
      if (c === "instanceRegistered" || c === "instanceChanged" || c === "instanceDeregistered") updateHealth(ev.event.value.service);
      else if (c === "snapshot") for (const s of routed.keys()) updateHealth(s);
    }
  })();

  const listenHost = options.host.includes(":") ? `[${options.host}]` : options.host;
  const { port: bound } = await server.listen(`${listenHost}:${options.port}`, options.credentials);
  const shownHost = options.host === "0.0.0.0" || options.host === "::" ? "localhost" : options.host;
  const address = `${shownHost.includes(":") ? `[${shownHost}]` : shownHost}:${bound}`;
  hub.setRouterAddress(address);
  tracing.setServerAddress(address);

  let dashboard: Dashboard | undefined;
  if (options.adminPort !== undefined) {
    try {
      dashboard = await startDashboard({ hub, port: options.adminPort, ...(metrics ? { metrics } : {}) });
    } catch (e) {
      await server.close(0);
      throw new Error(`cannot start the dashboard on port ${options.adminPort}: ${(e as Error).message}`);
    }
  }
  let metricsServer: MetricsServer | undefined;
  if (options.metricsPort !== undefined && metrics) {
    try {
      metricsServer = await startMetricsServer({ metrics, port: options.metricsPort, host: options.host });
    } catch (e) {
      await server.close(0);
      await dashboard?.close();
      throw new Error(`cannot serve metrics on port ${options.metricsPort}: ${(e as Error).message}`);
    }
  }

  // The config file: watched through its folder (editors replace files on save), debounced,
  // validated whole, then applied to every router; a bad edit keeps the running settings.
  let configWatcher: FSWatcher | undefined;
  let configTimer: NodeJS.Timeout | undefined;
  let configReloads = Promise.resolve();
  const reloadConfig = async () => {
    let next: RouterConfig;
    try {
      next = await loadRouterConfig(configFile!, configName);
      for (const note of checkRouterConfig(next, servedServices(current), configName)) log(note);
    } catch (e) {
      log(`${(e as Error).message}`);
      log(`config reload failed; still using the previous configuration of ${configName}`);
      return;
    }
    if (JSON.stringify(next) === JSON.stringify(config)) return;
    let nextAuth: ClientAuthorizer | undefined;
    try {
      nextAuth = buildClientAuth(next);
    } catch (e) {
      log(`${configName}: ${(e as Error).message}`);
      log(`config reload failed; still using the previous configuration of ${configName}`);
      return;
    }
    const previous = config;
    config = next;
    // grpc-web: CORS applies to the next request
    const corsChanged = JSON.stringify(previous.cors) !== JSON.stringify(next.cors);
    if (corsChanged) server.setCors(next.cors);
    if (JSON.stringify(previous.clientAuth) !== JSON.stringify(next.clientAuth)) {
      clientAuth = nextAuth;
      for (const r of routed.values()) r.router.setAuthorizeCall(clientAuth);
      log(`client authorization ${clientAuth ? "updated" : "removed"} from ${configName}`);
      options.audit?.(auditEvent("configChanged", { file: configFile!, detail: `client authorization ${clientAuth ? "updated" : "removed"}` }));
    }
    // Only services whose settings changed: configure starts rate-limit buckets afresh.
    const changed = [...routed].filter(([service]) => JSON.stringify(settingsFor(previous, service)) !== JSON.stringify(settingsFor(next, service)));
    for (const [service, r] of changed) configureRouter(r.router, service, "reload");
    log(`config reloaded from ${configName}: ${changed.length ? `applied to ${changed.map(([s]) => s).join(", ")}` : "no routed service changed"}${corsChanged ? "; cors changed" : ""}`);
    options.audit?.(auditEvent("configChanged", { file: configFile!, detail: changed.length ? `applied to ${changed.map(([s]) => s).join(", ")}` : "no routed service changed" }));
  };
  if (configFile && options.watch) {
    const base = path.basename(configFile);
    configWatcher = watch(path.dirname(configFile), (_event, file) => {
      if (file && String(file) !== base && !isMountSwap(String(file))) return;
      clearTimeout(configTimer);
      configTimer = setTimeout(() => {
        configReloads = configReloads.then(reloadConfig, reloadConfig);
      }, 200);
    });
    configWatcher.on("error", (e) => log(`watching ${configName} stopped: ${e.message}`));
  }

  // Hot reload: fs.watch on the module, debounced; one reload at a time, the last wins.
  let watcher: FSWatcher | undefined;
  let timer: NodeJS.Timeout | undefined;
  let reloading: Promise<void> | undefined;
  let again = false;
  const reload = async () => {
    const result = await loadServedModule({ root, out: options.out, previous: current.routerProtos });
    if (!result.ok) {
      printDiagnostics(result.diagnostics, root, io);
      log(`reload failed (${result.diagnostics.filter((d) => d.severity === "error").length} errors); still serving the previous configuration`);
      return;
    }
    if (result.module.key === current.key) {
      current = result.module;
      setReflection(current.files, current.services.map((s) => s.name));
      hub.resetSchemas();
      log("reloaded: no routed service changed");
      return;
    }
    printDiagnostics(result.module.diagnostics.filter((d) => !hasErrors([d])), root, io);
    current = result.module;
    const { added, replaced, removed } = apply(current);
    const parts = [
      added.length ? `added ${added.join(", ")}` : "",
      replaced.length ? `changed ${replaced.join(", ")}` : "",
      removed.length ? `removed ${removed.join(", ")}` : "",
    ].filter(Boolean);
    log(`reloaded: ${parts.join("; ") || "no routed service changed"}`);
  };
  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (reloading) {
        again = true;
        return;
      }
      reloading = reload()
        .catch((e: unknown) => log(`reload failed: ${e instanceof Error ? e.message : String(e)}`))
        .finally(() => {
          reloading = undefined;
          if (again) {
            again = false;
            schedule();
          }
        });
    }, 200);
  };
  if (options.watch) {
    const outRel = path.relative(root, options.out);
    watcher = watch(root, { recursive: true }, (_event, file) => {
      const name = file ? String(file) : "";
      if (name && !name.endsWith(".proto") && path.basename(name) !== "buf.yaml" && !isMountSwap(name)) return;
      if (name && outRel && !outRel.startsWith("..") && (name === outRel || name.startsWith(outRel + path.sep))) return;
      schedule();
    });
    watcher.on("error", (e) => log(`watching ${root} stopped: ${e.message}`));
  }

  return {
    address,
    dashboardUrl: dashboard?.url,
    metricsUrl: metricsServer?.url ?? (dashboard ? `${dashboard.url}metrics` : undefined),
    async close(graceMs = 10_000) {
      peerSet?.close();
      watcher?.close();
      clearTimeout(timer);
      configWatcher?.close();
      clearTimeout(configTimer);
      await configReloads;
      await reloading;
      health.shutdown();
      await Promise.all([...routed.values()].map((r) => r.router.close(graceMs)));
      await Promise.all([...closing]);
      healthWatcher.close();
      hub.close();
      metrics?.close();
      tracing.close();
      await dashboard?.close();
      await metricsServer?.close();
      // GOAWAY on every connection; those still open after 2 s are closed.
      await server.close(2000);
    },
  };
}

export const serveCommand: Command = {
  name: "serve",
  summary: "run a router for every service of a proto module, from its descriptors (no build step)",
  usage: "grpcrouter serve [--root DIR] [--out DIR] [--host HOST] [--port N] [--admin-port N] [--metrics-port N] [--no-watch] [--drain-grace S] [--keepalive S] [--public-admin] [--no-websocket] [--config FILE] [--peer HOST:PORT]... [--peers-dns NAME:PORT] [--log-format text|json] [--audit-log FILE] [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]] [--token-file FILE]",
  details: [
    "  --root DIR        the proto module: a folder with buf.yaml, or of .proto files (default: .)",
    "  --out DIR         where grpcrouter generate writes (default: gen); its router protos fix",
    "                    the frame field numbers, so bridges generated from them can register",
    "  --host HOST       the address to listen on (default: 127.0.0.1; 0.0.0.0 for every interface)",
    "  --port N          the router's port for clients and instances (default: 9090; 0 picks one)",
    "  --admin-port N    the web dashboard's port on 127.0.0.1 (default: 9091; 0 picks one)",
    "  --no-dashboard    no web dashboard",
    "  --metrics-port N  also serve Prometheus metrics at /metrics on HOST:N (they are always at",
    "                    the dashboard's /metrics, which answers only on 127.0.0.1)",
    "  --no-watch        do not reload when the module's .proto files (or --config) change",
    "  --config FILE     router settings per service (JSON): balancer, resilience, waitForReady,",
    "                    rateLimit; \"*\" for every service. Re-applied when the file changes,",
    "                    without dropping instances or calls; a bad edit keeps the running settings",
    "  --drain-grace S   on Ctrl-C/SIGTERM, how long calls in flight may take to finish (default: 10)",
    "  --keepalive S     ping idle Register streams this often, and ask bridges to (default: 10);",
    "                    a stream silent for two intervals is dropped. Keep it below the idle",
    "                    timeout of any NAT or load balancer between bridges and the router",
    "  --peer HOST:PORT  another router of this deployment (repeatable, or comma-separated); told",
    "                    to bridges when they register, so a bridge given one router reaches all",
    "  --peers-dns NAME:PORT",
    "                    a name that resolves to every router (a Kubernetes headless Service),",
    "                    re-resolved every 30 s; its addresses are told to bridges like --peer",
    "  --public-admin    also serve grpcrouter.v1.Admin when HOST is not loopback (it streams",
    "                    every call's metadata and bodies: pair it with --tls-client-ca)",
    "  --no-websocket    refuse Register streams over WebSocket (HTTP/1.1 Upgrade on --port, for",
    "                    bridges behind proxies that speak HTTP/1.1 only); HTTP/2 only",
    "  --log-format F    text (default) or json: one JSON object per log line",
    "  --audit-log FILE  append an audit record (JSON line) for every registration, refusal,",
    "                    departure, config change and operator action (Admin Act, Replay) to FILE",
    ...serveSecurityDetails,
    "",
    "The router also serves grpc.reflection (v1, v1alpha), grpc.health.v1 and, on a loopback",
    "HOST or with --public-admin, grpcrouter.v1.Admin.",
    "It runs until interrupted (Ctrl-C).",
  ],
  options: {
    root: { type: "string" },
    out: { type: "string" },
    host: { type: "string" },
    port: { type: "string" },
    "admin-port": { type: "string" },
    "metrics-port": { type: "string" },
    "no-dashboard": { type: "boolean" },
    "no-watch": { type: "boolean" },
    "public-admin": { type: "boolean" },
    "no-websocket": { type: "boolean" },
    "drain-grace": { type: "string" },
    keepalive: { type: "string" },
    config: { type: "string" },
    "log-format": { type: "string" },
    "audit-log": { type: "string" },
    peer: { type: "string", multiple: true },
    "peers-dns": { type: "string" },
    ...serveSecurityOptions,
  },
  async run(values, _positionals, io) {
    const { root, out: outDir } = moduleArgs(values, io.cwd);
    const port = portArg(values, "port", 9090);
    const adminPort = values["no-dashboard"] ? undefined : portArg(values, "admin-port", 9091);
    const metricsPort = values["metrics-port"] === undefined ? undefined : portArg(values, "metrics-port", 0);
    const host = typeof values.host === "string" && values.host ? values.host : "127.0.0.1";
    const grace = values["drain-grace"] === undefined ? 10 : Number(values["drain-grace"]);
    if (!Number.isFinite(grace) || grace < 0) throw new UsageError(`--drain-grace ${String(values["drain-grace"])}: not a number of seconds`);
    const keepalive = values.keepalive === undefined ? undefined : Number(values.keepalive);
    if (keepalive !== undefined && !(Number.isFinite(keepalive) && keepalive > 0)) throw new UsageError(`--keepalive ${String(values.keepalive)}: expected a number of seconds`);
    let logFormat: LogFormat;
    try {
      logFormat = parseLogFormat(typeof values["log-format"] === "string" ? values["log-format"] : undefined);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    const auditFile = typeof values["audit-log"] === "string" && values["audit-log"] ? path.resolve(io.cwd, values["audit-log"]) : undefined;
    let audit: AuditSink | undefined;
    if (auditFile) {
      // Owner-only: the audit trail names instances, principals and addresses.
      try {
        closeSync(openSync(auditFile, "a", 0o600));
      } catch (e) {
        throw new UsageError(`--audit-log ${auditFile}: ${(e as Error).message}`);
      }
      audit = (event) => appendFileSync(auditFile, `${auditJsonLine(event)}\n`);
    }
    // TLS files and tokens are read now, so a bad one fails before anything listens.
    const securityLog = formatLogger(logFormat, (text) => void io.stderr.write(text));
    const security = serveSecurity(values, io.cwd, (line) => {
      securityLog(line);
      if (/changed/.test(line)) audit?.(auditEvent("configChanged", { file: typeof values["token-file"] === "string" ? path.resolve(io.cwd, values["token-file"]) : "", detail: line }));
    });
    const peers = ((values.peer as string[] | undefined) ?? []).flatMap((p) => p.split(",")).map((p) => p.trim()).filter(Boolean);
    const peersDns = typeof values["peers-dns"] === "string" ? values["peers-dns"] : undefined;
    try {
      for (const t of peers.length ? parseRouterTargets(peers) : []) if (t.kind !== "static") throw new Error(`${t.target}: a DNS name goes in --peers-dns`);
      if (peersDns) parseRouterTargets(peersDns.startsWith("dns:") ? peersDns : `dns:///${peersDns}`);
    } catch (e) {
      throw new UsageError(`--peer/--peers-dns: ${(e as Error).message}`);
    }
    let running: RunningServer;
    try {
      running = await startServe({
        peers,
        peersDns, keepaliveMs: keepalive === undefined ? undefined : keepalive * 1000, root, out: outDir, host, port, adminPort, metricsPort, watch: !values["no-watch"], io, credentials: security.credentials, authorize: security.authorize, configFile: typeof values.config === "string" ? path.resolve(io.cwd, values.config) : undefined, publicAdmin: values["public-admin"] === true, websocket: values["no-websocket"] !== true, logFormat, audit });
    } catch (e) {
      io.stderr.write(`grpcrouter serve: ${(e as Error).message}\n`);
      return 1;
    }
    io.stdout.write(`grpcrouter: router listening on ${running.address}\n`);
    io.stdout.write(`grpcrouter: security: ${security.summary}\n`);
    if (security.authorize && !security.credentials) securityLog("warning: instance tokens travel in plaintext without --tls-cert");
    if (running.dashboardUrl) io.stdout.write(`grpcrouter: dashboard at ${running.dashboardUrl}\n`);
    if (running.metricsUrl) io.stdout.write(`grpcrouter: metrics at ${running.metricsUrl}\n`);
    io.stdout.write(`grpcrouter: serving ${path.relative(io.cwd, root) || "."}; Ctrl-C stops\n`);
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off("SIGINT", stop);
        process.off("SIGTERM", stop);
        resolve();
      };
      process.on("SIGINT", stop);
      process.on("SIGTERM", stop);
    });
    securityLog(`draining: no new calls; calls in flight have up to ${grace} s`);
    await running.close(grace * 1000);
    return 0;
  },
};

/**
 * A Kubernetes ConfigMap/Secret volume changes by swapping the `..data` symlink to a new
 * `..<timestamp>` folder; the files themselves are symlinks that never change, so a watcher
 * that looks only for `*.proto` or the config's name would miss every update.
 */
function isMountSwap(name: string): boolean {
  const first = name.split(path.sep)[0]!;
  return first.startsWith("..data") || /^\.\.\d{4}_/.test(first);
}
