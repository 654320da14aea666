// `grpcrouter serve`: a router for every service of a proto module, straight from its
// descriptors, with server reflection, grpc.health.v1, the Admin service and the web
// dashboard, reloading when the module's .proto files (or --config) change.
//
// One router routes every service of the module (serve-services.ts). A reload adds new
// services, replaces changed ones in place and removes the rest: services that still exist
// keep their registered instances and calls in flight. A module that no longer compiles, or
// a config that does not validate, keeps the running configuration and says why.
import { appendFileSync, closeSync, openSync, type FSWatcher } from "node:fs";
import path from "node:path";
import type * as grpc from "@grpc/grpc-js";
import { formatDiagnostic, hasErrors, type Diagnostic } from "@grpcrouter/generator";
import {
  AdminHub,
  GrpcServer,
  RouterHealth,
  addAdminService,
  addReflection,
  createRouterMetrics,
  createRouterTracing,
  describeFromRegistry,
  auditEvent,
  auditJsonLine,
  formatLogger,
  parseLogFormat,
  type AuditSink,
  type LogFormat,
  parseRouterTargets,
  RouterSet,
  startDashboard,
  startMetricsServer,
  type Dashboard,
  type MetricsServer,
  type RouterMetrics,
  type RouterOptions,
} from "@grpcrouter/runtime";
import { seconds, UsageError, waitForSignal, type Command, type Io } from "../command.js";
import { moduleArgs } from "./module-args.js";
import { ServeConfig } from "./serve-config.js";
import { loadServedModule, type ServedModule } from "./serve-module.js";
import { debouncedReloader, isMountSwap, watchFolder } from "./serve-reload.js";
import { ServedServices } from "./serve-services.js";
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
  const stderr = batchedWriter((text) => void options.io.stderr.write(text));
  try {
    return await serve(options, stderr);
  } catch (e) {
    stderr.flush(); // what was logged comes before the caller's error line
    throw e;
  }
}

async function serve(options: ServeOptions, stderr: ReturnType<typeof batchedWriter>): Promise<RunningServer> {
  const { io, root } = options;
  const log = formatLogger(options.logFormat ?? "text", stderr.write);
  const peers = startPeers(options, log);
  let current = await loadFirstModule(options);
  const config = new ServeConfig(options.configFile, options.configFile ? path.relative(io.cwd, options.configFile) || options.configFile : "", log);
  // A bad config file at start fails before anything listens; later, a bad edit keeps this one.
  await config.load(current.services);

  const hub = new AdminHub({ describe: (method) => describeFromRegistry(current.registry)(method) });
  // Before the router, so they count from the first call.
  const metrics: RouterMetrics | undefined = options.adminPort !== undefined || options.metricsPort !== undefined ? createRouterMetrics({ hub }) : undefined;
  // A span per call through the global OpenTelemetry API: a no-op unless an SDK is preloaded
  // (e.g. NODE_OPTIONS="--import @opentelemetry/auto-instrumentations-node/register", with
  // OTEL_NODE_DISABLED_INSTRUMENTATIONS=grpc so grpc-js is not traced a second time).
  const tracing = createRouterTracing({ hub });
  const health = new RouterHealth([]);
  const server = new GrpcServer({ cors: config.current.cors, ...(options.websocket === false ? { websocket: false } : {}) });
  const setReflection = addReflection(
    server,
    current.files,
    current.services.map((s) => s.name),
  );
  health.addTo(server);
  // The Admin service streams every call's metadata and bodies: on a port other machines can
  // reach it is opt-in. The dashboard (loopback only) does not need it.
  if (isLoopbackHost(options.host) || options.publicAdmin) addAdminService(server, hub, { onRequest: (method) => metrics?.countAdminRequest(method) });
  else log(`grpcrouter.v1.Admin is not served on ${options.host} (it shows call metadata and bodies); --public-admin serves it`);

  // One router for every service of the module.
  const served = new ServedServices({
    router: {
      hub,
      logger: log,
      peers: peers.list,
      ...(options.keepaliveMs ? { heartbeatIntervalMs: options.keepaliveMs } : {}),
      ...(options.authorize ? { authorize: options.authorize } : {}),
      ...(options.audit ? { audit: options.audit } : {}),
      ...(config.clientAuth ? { authorizeCall: config.clientAuth } : {}),
    },
    health,
    settings: (service) => config.settings(service),
    log,
    configName: config.name,
  });
  served.router.addTo(server);
  served.apply(current);

  const listening = await listenAll(options, server, hub, metrics);
  tracing.setServerAddress(listening.address);

  /** The module's .proto files changed: compile, then apply service by service. */
  const reloadModule = async () => {
    const result = await loadServedModule({ root, out: options.out, previous: current.routerProtos });
    if (!result.ok) {
      printDiagnostics(result.diagnostics, root, io);
      log(`reload failed (${result.diagnostics.filter((d) => d.severity === "error").length} errors); still serving the previous configuration`);
      return;
    }
    if (result.module.key !== current.key)
      printDiagnostics(
        result.module.diagnostics.filter((d) => !hasErrors([d])),
        root,
        io,
      );
    current = result.module;
    const { added, replaced, removed } = served.apply(current);
    setReflection(
      current.files,
      current.services.map((s) => s.name),
    );
    hub.resetSchemas();
    const parts = [
      added.length ? `added ${added.join(", ")}` : "",
      replaced.length ? `changed ${replaced.join(", ")}` : "",
      removed.length ? `removed ${removed.join(", ")}` : "",
    ].filter(Boolean);
    log(`reloaded: ${parts.join("; ") || "no routed service changed"}`);
  };

  /** The config file changed: validated whole, then applied to the services it changes. */
  const reloadConfig = async () => {
    const change = await config.reload(current.services, served.router.services);
    if (!change) return;
    if (change.cors) server.setCors(config.current.cors); // applies to the next request
    if (change.clientAuth) {
      served.router.setAuthorizeCall(config.clientAuth);
      log(`client authorization ${config.clientAuth ? "updated" : "removed"} from ${config.name}`);
      options.audit?.(auditEvent("configChanged", { file: config.file!, detail: `client authorization ${config.clientAuth ? "updated" : "removed"}` }));
    }
    for (const service of change.services) served.configure(service);
    const applied = change.services.length ? `applied to ${change.services.join(", ")}` : "no routed service changed";
    log(`config reloaded from ${config.name}: ${applied}${change.cors ? "; cors changed" : ""}`);
    options.audit?.(auditEvent("configChanged", { file: config.file!, detail: applied }));
  };

  const reloadFailed = (e: unknown) => log(`reload failed: ${e instanceof Error ? e.message : String(e)}`);
  const reloaders = [debouncedReloader(reloadModule, reloadFailed), debouncedReloader(reloadConfig, reloadFailed)] as const;
  const watchers: FSWatcher[] = [];
  if (options.watch) {
    const outRel = path.relative(root, options.out);
    const isOutput = (name: string) => outRel !== "" && !outRel.startsWith("..") && (name === outRel || name.startsWith(outRel + path.sep));
    const isModuleFile = (name: string) => (name.endsWith(".proto") || path.basename(name) === "buf.yaml" || isMountSwap(name)) && !isOutput(name);
    watchers.push(watchFolder(root, true, isModuleFile, reloaders[0].schedule, log, root));
    if (config.file) {
      // Through its folder: editors replace files on save.
      const base = path.basename(config.file);
      watchers.push(watchFolder(path.dirname(config.file), false, (name) => name === base || isMountSwap(name), reloaders[1].schedule, log, config.name));
    }
  }

  stderr.flush(); // what starting said, before the caller says it listens
  return {
    address: listening.address,
    dashboardUrl: listening.dashboard?.url,
    metricsUrl: listening.metricsServer?.url ?? (listening.dashboard ? `${listening.dashboard.url}metrics` : undefined),
    async close(graceMs = 10_000) {
      peers.close();
      for (const w of watchers) w.close();
      await Promise.all(reloaders.map((r) => r.close()));
      health.shutdown();
      await served.close(graceMs);
      hub.close();
      metrics?.close();
      tracing.close();
      await listening.dashboard?.close();
      await listening.metricsServer?.close();
      // GOAWAY on every connection; those still open after 2 s are closed.
      await server.close(2000);
      stderr.flush();
    },
  };
}

/**
 * Log lines leave in one write per event-loop turn: 10,000 instances registering at once
 * are 10,000 "registered" lines, and one synchronous write(2) each to a pipe cost the router
 * a tenth of its time during the storm. Lines keep their order; a turn's lines are out
 * before the next turn starts.
 */
function batchedWriter(write: (text: string) => void): { write: (text: string) => void; flush: () => void } {
  let pending: string[] = [];
  const flush = () => {
    if (pending.length === 0) return;
    const text = pending.join("");
    pending = [];
    write(text);
  };
  return {
    write: (text) => {
      if (pending.push(text) === 1) setImmediate(flush);
    },
    flush,
  };
}

/**
 * The other routers of this deployment, as bridges are told in Welcome: --peer, and the
 * addresses --peers-dns resolves to (re-resolved every 30 s). One array, updated in place:
 * the router reads it whenever it sends a Welcome.
 */
function startPeers(options: ServeOptions, log: (line: string) => void): { list: string[]; close(): void } {
  const list: string[] = [...(options.peers ?? [])];
  if (!options.peersDns) return { list, close() {} };
  const set: RouterSet = new RouterSet(peersDnsTarget(options.peersDns), {
    logger: (line) => log(`peers: ${line}`),
    onChange: () => list.splice(0, list.length, ...new Set([...(options.peers ?? []), ...set.endpoints.map((e) => e.address)])),
  });
  set.start().catch((e: unknown) => log(`peers: ${(e as Error).message}; retrying every 30 s`));
  return { list, close: () => set.close() };
}

/** --peers-dns as a gRPC target: a bare `name:port` is `dns:///name:port`. */
function peersDnsTarget(name: string): string {
  return name.startsWith("dns:") ? name : `dns:///${name}`;
}

/** The module as it compiles now: throws (after printing the diagnostics) when it does not. */
async function loadFirstModule(options: ServeOptions): Promise<ServedModule> {
  const first = await loadServedModule({ root: options.root, out: options.out });
  if (!first.ok) {
    printDiagnostics(first.diagnostics, options.root, options.io);
    throw new Error(`${options.root} does not compile to a routable module; nothing started`);
  }
  printDiagnostics(first.module.diagnostics, options.root, options.io);
  return first.module;
}

/** The router's port, then the dashboard's and the metrics port (a failure closes what started). */
async function listenAll(options: ServeOptions, server: GrpcServer, hub: AdminHub, metrics: RouterMetrics | undefined) {
  const listenHost = options.host.includes(":") ? `[${options.host}]` : options.host;
  const { port: bound } = await server.listen(`${listenHost}:${options.port}`, options.credentials);
  const shownHost = options.host === "0.0.0.0" || options.host === "::" ? "localhost" : options.host;
  const address = `${shownHost.includes(":") ? `[${shownHost}]` : shownHost}:${bound}`;
  hub.setRouterAddress(address);
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
  return { address, dashboard, metricsServer };
}

export const serveCommand: Command = {
  name: "serve",
  summary: "run a router for every service of a proto module, from its descriptors (no build step)",
  usage:
    "grpcrouter serve [--root DIR] [--out DIR] [--host HOST] [--port N] [--admin-port N] [--metrics-port N] [--no-watch] [--drain-grace S] [--keepalive S] [--public-admin] [--no-websocket] [--config FILE] [--peer HOST:PORT]... [--peers-dns NAME:PORT] [--log-format text|json] [--audit-log FILE] [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]] [--token-file FILE]",
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
    '                    rateLimit; "*" for every service. Re-applied when the file changes,',
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
    const keepalive = values.keepalive === undefined ? undefined : seconds(values.keepalive, "keepalive", 0);
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
      if (/changed/.test(line))
        audit?.(
          auditEvent("configChanged", { file: typeof values["token-file"] === "string" ? path.resolve(io.cwd, values["token-file"]) : "", detail: line }),
        );
    });
    const peers = ((values.peer as string[] | undefined) ?? [])
      .flatMap((p) => p.split(","))
      .map((p) => p.trim())
      .filter(Boolean);
    const peersDns = typeof values["peers-dns"] === "string" ? values["peers-dns"] : undefined;
    try {
      for (const t of peers.length ? parseRouterTargets(peers) : []) if (t.kind !== "static") throw new Error(`${t.target}: a DNS name goes in --peers-dns`);
      if (peersDns) parseRouterTargets(peersDnsTarget(peersDns));
    } catch (e) {
      throw new UsageError(`--peer/--peers-dns: ${(e as Error).message}`);
    }
    let running: RunningServer;
    try {
      running = await startServe({
        peers,
        peersDns,
        keepaliveMs: keepalive === undefined ? undefined : keepalive * 1000,
        root,
        out: outDir,
        host,
        port,
        adminPort,
        metricsPort,
        watch: !values["no-watch"],
        io,
        credentials: security.credentials,
        authorize: security.authorize,
        configFile: typeof values.config === "string" ? path.resolve(io.cwd, values.config) : undefined,
        publicAdmin: values["public-admin"] === true,
        websocket: values["no-websocket"] !== true,
        logFormat,
        audit,
      });
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
    await waitForSignal();
    securityLog(`draining: no new calls; calls in flight have up to ${grace} s`);
    await running.close(grace * 1000);
    return 0;
  },
};
