// `grpcrouter bridge`: a sidecar that registers an EXISTING gRPC server (any language) with a
// router and forwards the calls the router sends it, bytes as they are: the server needs no
// change and the sidecar no generated code, only the module's protos (for the tunnel's
// frame field numbers, the same ones `serve` and generated routers use).
import type { ClientHttp2Session } from "node:http2";
import os from "node:os";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { formatDiagnostic } from "@grpcrouter/generator";
import {
  CallError,
  GrpcClientStream,
  Http2Channel,
  createRawBridge,
  finishCall,
  onCallAbort,
  pipeRequests,
  requestMetadata,
  sendResponse,
  type GrpcCallListener,
  parseProxyUrl,
  parseRouterTargets,
  TRANSPORT_MODES,
  type Bridge,
  type TransportMode,
  type RawCall,
  type RawHandler,
  type RawStatus,
} from "@grpcrouter/runtime";
import { seconds, UsageError, waitForSignal, type Command } from "../command.js";
import { moduleArgs } from "./module-args.js";
import { loadServedModule } from "./serve-module.js";
import { TargetHealth, targetServices, watchTargetHealth } from "./target-health.js";
import { bridgeSecurity, bridgeSecurityDetails, bridgeSecurityOptions } from "./tls.js";

/**
 * A raw handler that makes the same call on the target behind `channel` (one HTTP/2
 * connection, shared by every call and redialled when it goes): metadata, deadline and every
 * message go through as bytes, and so do the server's headers, messages and status
 * (grpc-status-details-bin included). Every method kind is one HTTP/2 stream; responses are
 * read only as fast as the router's flow-control window allows, and a cancelled call
 * resets its stream on the target.
 */
export function passthroughHandler(channel: Http2Channel): RawHandler {
  return (call: RawCall): Promise<RawStatus> => {
    // Every call but the first of a connection finds it open: no promise's turn to wait.
    const session = channel.openSession();
    if (session) return new ForwardedCall(channel, call).start(session);
    return channel.session().then(
      (s) => new ForwardedCall(channel, call).start(s),
      (e: unknown) => unavailable(channel, e),
    );
  };
}

/** The target could not be reached (no connection, or it closed as the call began): the next call redials. */
function unavailable(channel: Http2Channel, e: unknown): RawStatus {
  return { code: grpc.status.UNAVAILABLE, details: `target ${channel.address}: ${(e as Error).message}` };
}

/**
 * One forwarded call: the target's stream and its listener in one object (the per-call
 * closures and promise chains it replaces were a visible share of the sidecar's CPU).
 */
class ForwardedCall implements GrpcCallListener {
  private upstream: GrpcClientStream | undefined;
  private done!: (status: RawStatus) => void;
  private stopListening: (() => void) | undefined;
  private aborted = false;
  /** The target's status, held while response messages still wait for the router's window. */
  private status: RawStatus | undefined;
  /** Response messages waiting for window, in order; the target's stream is paused meanwhile. */
  private waiting = 0;
  private sending: Promise<void> | undefined;
  /**
   * A method with one response: its message, held until the status comes (the target sends
   * them together), so that message and status reach the router in one write, not two.
   */
  private held: Buffer | undefined;
  private first = true;

  constructor(
    private readonly channel: Http2Channel,
    private readonly call: RawCall,
  ) {}

  start(session: ClientHttp2Session): Promise<RawStatus> {
    // A cancel (or the call's end) resets the target's stream. onCallAbort, not call.signal:
    // an AbortSignal per forwarded call was a visible share of the sidecar's CPU.
    this.stopListening = onCallAbort(this.call, () => this.abort());
    if (this.aborted) return Promise.resolve({ code: grpc.status.CANCELLED, details: "cancelled before the target was called" });
    const call = this.call;
    try {
      this.upstream = new GrpcClientStream(
        session,
        call.method,
        requestMetadata(call),
        this,
        // The tunnel's call ends at its deadline and cancels this one: no second timer.
        Number.isFinite(call.deadline) ? { deadline: call.deadline, enforceDeadline: false } : undefined,
      );
    } catch (e) {
      // The connection closed between asking for it and now (a GOAWAY): the next call redials.
      this.stopListening();
      return Promise.resolve(unavailable(this.channel, e));
    }
    const result = new Promise<RawStatus>((resolve) => {
      this.done = resolve;
    });
    pipeRequests(call, this.upstream);
    return result;
  }

  private abort(): void {
    this.aborted = true;
    this.upstream?.cancel();
  }

  // ---- the target's answer (GrpcCallListener) ----

  onHeaders(md: grpc.Metadata, custom: boolean): void {
    // Headers with nothing of the target's own are left to the router (one frame less).
    if (custom) this.call.sendHeaders(md);
  }

  onMessage(message: Buffer): void {
    if (this.first) {
      this.first = false;
      const kind = this.call.kind;
      if (kind === "unary" || kind === "client_streaming") {
        this.held = message;
        return;
      }
    }
    // A second response to a one-response method (the client will refuse it): in order still.
    this.relayHeld();
    this.relay(message);
  }

  private relayHeld(): void {
    const held = this.held;
    if (held === undefined) return;
    this.held = undefined;
    this.relay(held);
  }

  private relay(message: Buffer): void {
    // Relayed at once while the router's window takes it; else in order, the target's stream
    // paused until there is window again (HTTP/2 flow control then holds the target back).
    const pending = this.waiting === 0 ? sendResponse(this.call, message) : this.sending!.then(() => this.call.send(message));
    if (pending === undefined) return;
    if (this.waiting++ === 0) this.upstream!.pause();
    this.sending = pending.then(
      () => this.sent(),
      (e: unknown) => this.notSent(e),
    );
  }

  private sent(): void {
    if (--this.waiting > 0) return;
    this.upstream!.resume();
    const status = this.status;
    if (status) this.done(status);
  }

  private notSent(e: unknown): void {
    if (e instanceof CallError && e.code === grpc.status.RESOURCE_EXHAUSTED) {
      // Too large for the tunnel: the call fails with that, whether or not the target is done.
      const failed: RawStatus = { code: e.code, details: e.message };
      if (this.status) this.status = failed;
      else this.upstream!.cancel(e.code, e.message);
    } else this.upstream!.cancel(); // the call is over: the target's stream goes
    this.sent();
  }

  onStatus(status: grpc.StatusObject): void {
    this.stopListening!();
    const result: RawStatus = { code: status.code, details: status.details, metadata: status.metadata };
    // Bytes as the target sent them, whatever the status (a client decides what it keeps),
    // unless the call is over on the router's side already (cancelled, past its deadline).
    if (this.aborted) this.held = undefined;
    else this.relayHeld();
    // Messages still waiting for window go first.
    if (this.waiting > 0) {
      this.status = result;
      return;
    }
    finishCall(this.call, result);
    this.done(result);
  }
}

export const bridgeCommand: Command = {
  name: "bridge",
  summary: "register an existing gRPC server (any language) with a router and forward its calls",
  usage:
    "grpcrouter bridge --target HOST:PORT --router HOST:PORT|dns:///NAME:PORT [--router …]... [--dns-refresh S] [--root DIR] [--out DIR] [--service NAME]... [--id ID] [--label K=V]... [--streams N] [--max-calls N] [--health-interval S] [--router-tls [--router-ca FILE] [--router-cert FILE --router-key FILE]] [--token T | --token-file FILE] [--target-tls [--target-ca FILE]] [--proxy URL] [--transport auto|h2|websocket] [--keepalive S]",
  details: [
    "  --target HOST:PORT  the gRPC server to forward calls to (plaintext unless --target-tls)",
    "  --router HOST:PORT  a router to register with; repeatable or comma-separated (every router",
    "                      of a deployment), or dns:///NAME:PORT (dns://DNS-SERVER/NAME:PORT): every",
    "                      address NAME resolves to, re-resolved every 30 s and on a lost",
    "                      connection (a Kubernetes headless Service)",
    "  --dns-refresh S     seconds between resolutions of a dns: router (default: 30)",
    "  --keepalive S       ping the router when a Register stream is idle this long; silent for",
    "                      two intervals, the stream is dialled anew (a sleep, a network change,",
    "                      a NAT that forgot the connection). Default: what the router asks for",
    "                      (serve --keepalive, 10 s). Keep it below the path's idle timeouts",
    "  --root DIR          the proto module the server implements (default: .)",
    "  --out DIR           where grpcrouter generate writes (default: gen); its router protos fix",
    "                      the frame field numbers",
    "  --service NAME      register only this service (repeatable; default: every service)",
    "  --id ID             the instance id the router shows (default: <hostname>-<pid>)",
    "  --label K=V         a label for routing (repeatable)",
    "  --streams N         Register streams per service (default: 1)",
    "  --max-calls N       calls at once per service (default: no limit)",
    "  --health-interval S how often to check the target (default: 5): grpc.health.v1 when it",
    "                      serves it, else a connection probe; the router hears NOT_SERVING",
    "                      while the target is down. When the target serves reflection, only",
    "                      the services it lists are registered",
    ...bridgeSecurityDetails,
    "  --proxy URL         reach the router through this HTTP CONNECT proxy,",
    "                      http://[user:password@]host:port (default: grpc_proxy, https_proxy or",
    "                      http_proxy from the environment, unless no_grpc_proxy/no_proxy names",
    "                      the router); --proxy none dials directly",
    "  --transport T       how Register streams reach the router: auto (default: HTTP/2, and",
    "                      WebSocket when something on the way speaks HTTP/1.1 only; it probes",
    "                      HTTP/2 meanwhile and moves back when it works), h2, or websocket",
    "",
    "It runs until interrupted (Ctrl-C), then drains: the router sends no new calls, calls in",
    "flight get 10 s to finish. A router that refuses the instance (a wrong token, …), also",
    "later when it reconnects (a token removed from the router's file), ends it with exit",
    "code 1 and the router's reason; an unreachable or restarting router is retried.",
  ],
  options: {
    target: { type: "string" },
    router: { type: "string", multiple: true },
    root: { type: "string" },
    out: { type: "string" },
    service: { type: "string", multiple: true },
    id: { type: "string" },
    label: { type: "string", multiple: true },
    streams: { type: "string" },
    "max-calls": { type: "string" },
    "health-interval": { type: "string" },
    ...bridgeSecurityOptions,
    proxy: { type: "string" },
    transport: { type: "string" },
    "dns-refresh": { type: "string" },
    keepalive: { type: "string" },
  },
  async run(values, _positionals, io) {
    const v = values as Record<string, string | boolean | string[] | undefined>;
    const target = hostPort(v.target, "target");
    const routers = routerTargets(v.router);
    const router = routers.join(",");
    const { root, out } = moduleArgs({ root: typeof v.root === "string" ? v.root : undefined, out: typeof v.out === "string" ? v.out : undefined }, io.cwd);
    const labels: Record<string, string> = {};
    for (const l of (v.label as string[] | undefined) ?? []) {
      const i = l.indexOf("=");
      if (i <= 0) throw new UsageError(`--label ${l}: expected KEY=VALUE`);
      labels[l.slice(0, i)] = l.slice(i + 1);
    }
    const streams = count(v.streams, "streams", 1);
    const maxCalls = count(v["max-calls"], "max-calls", 0);
    const instanceId = typeof v.id === "string" && v.id ? v.id : `${os.hostname()}-${process.pid}`;
    const proxy = proxyOption(v.proxy);
    const keepalive = v.keepalive === undefined ? undefined : seconds(v.keepalive, "keepalive", 0);
    const transport = transportOption(v.transport);
    const healthInterval = seconds(v["health-interval"], "health-interval", 5);
    const routerRefreshS = v["dns-refresh"] === undefined ? undefined : seconds(v["dns-refresh"], "dns-refresh", 30);
    // TLS files and the token are read now: a bad one fails before anything dials.
    const security = bridgeSecurity(v, io.cwd);

    const loaded = await loadServedModule({ root, out });
    if (!loaded.ok) {
      for (const d of loaded.diagnostics)
        io.stderr.write(formatDiagnostic({ ...d, file: d.file ? path.relative(io.cwd, path.join(root, d.file)) : "" }) + "\n");
      io.stderr.write(`grpcrouter bridge: ${root} does not compile to a routable module\n`);
      return 1;
    }
    const only = (v.service as string[] | undefined) ?? [];
    let specs = loaded.module.specs.filter((s) => only.length === 0 || only.includes(s.service.typeName));
    const unknown = only.filter((n) => !loaded.module.specs.some((s) => s.service.typeName === n));
    if (unknown.length)
      throw new UsageError(`--service ${unknown.join(", ")}: not in the module (it has ${loaded.module.specs.map((s) => s.service.typeName).join(", ")})`);
    const log = (line: string): void => {
      io.stderr.write(`grpcrouter bridge: ${line}\n`);
    };

    // ---- the target's services and health (target-health.ts), apart from forwarding ----
    const implemented = await targetServices(target, security.targetCredentials);
    if (implemented) {
      const missing = specs.filter((s) => !implemented.includes(s.service.typeName)).map((s) => s.service.typeName);
      if (missing.length)
        log(
          `not registering ${missing.join(", ")}: ${target} does not implement ${missing.length === 1 ? "it" : "them"} (its reflection lists ${implemented.join(", ")})`,
        );
      specs = specs.filter((s) => implemented.includes(s.service.typeName));
      if (specs.length === 0) {
        io.stderr.write(`grpcrouter bridge: ${target} implements none of the services to register\n`);
        return 1;
      }
    }
    const targetHealth = new TargetHealth(
      target,
      security.targetCredentials,
      specs.map((s) => s.service.typeName),
    );
    const initial = await targetHealth.check();

    // The target follows the proxy environment as grpc-js did; --proxy itself is for the router.
    // No keepalive pings: between calls the connection is idle, and C-core servers answer
    // pings without calls with GOAWAY.
    const targetChannel = new Http2Channel(target, { credentials: security.targetCredentials, keepalive: false, ...(proxy === false ? { proxy: false } : {}) });
    const handler = passthroughHandler(targetChannel);
    const bridges: Bridge[] = specs.map((spec) =>
      createRawBridge(spec, handler, {
        router: routers,
        ...(routerRefreshS !== undefined ? { routerRefreshMs: routerRefreshS * 1000 } : {}),
        instanceId,
        labels,
        streams,
        ...(maxCalls > 0 ? { maxConcurrentCalls: maxCalls } : {}),
        ...(security.routerCredentials ? { credentials: security.routerCredentials } : {}),
        ...(security.credentialsHook ? { credentialsHook: security.credentialsHook } : {}),
        ...(proxy !== undefined ? { proxy } : {}),
        ...(keepalive !== undefined ? { keepaliveMs: keepalive * 1000 } : {}),
        transport,
        description: `grpcrouter bridge to ${target} (${os.hostname()} pid ${process.pid})`,
        logger: log,
      }),
    );
    // Registered NOT_SERVING while the target is down; the watch reports each change.
    specs.forEach((spec, i) => bridges[i]!.setServing(initial.serving.get(spec.service.typeName) ?? true));
    const stopWatching = watchTargetHealth(targetHealth, healthInterval * 1000, (service, serving, by) => {
      const i = specs.findIndex((s) => s.service.typeName === service);
      bridges[i]?.setServing(serving);
      log(`${target} ${serving ? "is SERVING" : "is down: NOT_SERVING"} ${service} (${by === "health" ? "grpc.health.v1" : "connection probe"})`);
    });
    // Bridges reconnect by themselves (an unreachable router, a restarting one are retried);
    // start() resolving means registered now. A router refusing the instance (a wrong or
    // revoked token, …), at start or on any later reconnect, stops that bridge and rejects
    // its `stopped`: retrying cannot fix that, so the command drains the others and says why.
    void Promise.all(bridges.map((b) => b.start())).then(
      () =>
        io.stdout.write(
          `grpcrouter bridge: ${instanceId} registered ${specs.map((s) => s.service.typeName).join(", ")} with ${router}, forwarding to ${target}\n`,
        ),
      () => {}, // the refusal arrives through `stopped`
    );
    const refused = Promise.all(bridges.map((b) => b.stopped)).then(
      () => new Promise<never>(() => {}),
      (e: unknown) => (e instanceof Error ? e.message : String(e)),
    );
    const reason = await Promise.race([waitForSignal().then(() => undefined), refused]);
    stopWatching();
    targetHealth.close();
    // Refused or asked to stop: the other bridges drain either way.
    io.stderr.write(`grpcrouter bridge: ${reason ?? "draining"}\n`);
    await Promise.all(bridges.map((b) => b.stop(10_000)));
    targetChannel.close();
    return reason === undefined ? 0 : 1;
  },
};

/** --router, repeatable and comma-separated; each HOST:PORT or a dns: target. */
function routerTargets(value: unknown): string[] {
  const list = (Array.isArray(value) ? value : typeof value === "string" ? [value] : [])
    .flatMap((r: string) => r.split(","))
    .map((r) => r.trim())
    .filter(Boolean);
  if (list.length === 0) throw new UsageError("--router HOST:PORT is required");
  try {
    parseRouterTargets(list);
  } catch (e) {
    throw new UsageError(`--router ${(e as Error).message.replace(/^router target /, "")}`);
  }
  return list;
}

function hostPort(value: unknown, name: string): string {
  if (typeof value !== "string" || !value) throw new UsageError(`--${name} HOST:PORT is required`);
  if (!/^(\[[^\]]+\]|[^:\s]+):\d{1,5}$/.test(value)) throw new UsageError(`--${name} ${value}: expected HOST:PORT`);
  return value;
}

/** --transport, checked now. */
function transportOption(value: unknown): TransportMode {
  if (value === undefined) return "auto";
  if (typeof value === "string" && (TRANSPORT_MODES as readonly string[]).includes(value)) return value as TransportMode;
  throw new UsageError(`--transport ${String(value)}: expected ${TRANSPORT_MODES.join(", ")}`);
}

/** --proxy URL, checked now; "none" turns the environment's proxy off. */
function proxyOption(value: unknown): string | false | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value === "") throw new UsageError("--proxy URL: expected http://[user:password@]host:port or none");
  if (value === "none") return false;
  try {
    parseProxyUrl(value, "--proxy");
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  return value;
}

function count(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "string" || !/^\d+$/.test(value)) throw new UsageError(`--${name} ${String(value)}: expected a whole number`);
  return Number(value);
}
