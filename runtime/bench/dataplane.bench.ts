// `npm run bench -- dataplane` (or a path's name, e.g. `npm run bench -- haproxy`): the data
// plane measured honestly. h2load (C, one thread) drives every path with the same message and
// the same settings, in one run, side by side with the baselines it is judged against:
//
//   direct           bare grpc-js server (identity serializers), answers an empty message
//   haproxy          HAProxy (h2 both sides, nbthread 1) → direct
//   nginx            nginx grpc_pass (1 worker, upstream keepalive) → direct
//   router-raw       generated Echo router + createRawBridge answering like direct (own processes)
//   router-ws        the same, the bridge's Register stream over WebSocket (issue 16's fallback)
//   router-proxy     the same over HTTP/2, the bridge reaching the router through tinyproxy (CONNECT)
//   serve-sidecar    `grpcrouter serve` + `grpcrouter bridge --target` direct (the CLI's sources)
//   connect-node     a probe Echo ServiceImpl served by connect-node
//   connect-bridge   generated router + generated Connect bridge with that impl
//   stream-direct    server streaming, BENCH_STREAM_MESSAGES (100) empty messages per call, direct
//   stream-router    the same through router + raw bridge
//   instances        BENCH_INSTANCES (10,000) raw bridges in BENCH_LOADERS (2) processes register
//                    with `grpcrouter serve`, BENCH_PER_ADDRESS (100) per loopback source
//                    address; grpc.health.v1 Check latency meanwhile
//
// Throughput: BENCH_CLIENTS (4) connections × BENCH_STREAMS (32) streams; latency: 1 call
// outstanding, p50/p99 from h2load's per-request log. BENCH_SECONDS (3) measured after
// BENCH_WARMUP (1) per run (or BENCH_REQUESTS requests per run); BENCH_ROUNDS (1) rounds
// alternate over the paths; each figure is the best of the rounds (BENCH_STAT=median for
// medians): other load on the machine only ever makes a run slower, so the best round is
// the closest to what the path can do.
// Every path answers one real gRPC call with grpc-status OK before and after its load, or it
// fails loudly (h2load counts HTTP 200s, and gRPC errors are HTTP 200s too).
// BENCH_PROFILE=<dir>: the processes under test (not the baselines) write V8 CPU profiles
// there. BENCH_JSON=<file>: the results as JSON too. Nothing is asserted: the machine decides.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { checkServerStream, checkUnary, unaryCall } from "./check.js";
import { echoModule, env, fmt, loadAverage, median, SAY } from "./common.js";
import { runH2load, percentile, type H2loadResult, type H2loadSpec } from "./h2load.js";
import { startHaproxy, startNginx, startTinyproxy } from "./proxies.js";
import { RegistrationLimits } from "../src/tunnel/registration-limits.js";
import { groupCpuMs, startCli, startRole, stop, stopAll, type Role } from "./processes.js";

const SECONDS = env("BENCH_SECONDS", 3);
const WARMUP = env("BENCH_WARMUP", 1);
const ROUNDS = Math.max(1, env("BENCH_ROUNDS", 1));
/** A fixed number of requests per run instead of a duration (no warm-up): for the harness's test. */
const REQUESTS = env("BENCH_REQUESTS", 0);
const CLIENTS = Math.max(1, env("BENCH_CLIENTS", 4));
const STREAMS = Math.max(1, env("BENCH_STREAMS", 32));
const STREAM_MESSAGES = Math.max(1, env("BENCH_STREAM_MESSAGES", 100));
const INSTANCES = Math.max(1, env("BENCH_INSTANCES", 10_000));
const LOADERS = Math.max(1, env("BENCH_LOADERS", 2));
/** Instances per loopback source address (127.1.x.y): real instances dial from hosts of their own. */
const PER_ADDRESS = Math.max(1, env("BENCH_PER_ADDRESS", 100));
/** Seconds the instances get to register before the bench gives up and says how far they got. */
const REGISTER_DEADLINE = Math.max(1, env("BENCH_REGISTER_DEADLINE", 60));
process.env.BENCH_STREAM_MESSAGES = String(STREAM_MESSAGES); // the servers stream as many
const profileDir = process.env.BENCH_PROFILE ? path.resolve(process.env.BENCH_PROFILE) : undefined;

const COUNT = "/demo.v1.Echo/Count";
const HEALTH_CHECK = "/grpc.health.v1.Health/Check";
const EMPTY = new Uint8Array(0);

/** Node flags of a process under test: a CPU profile of it when BENCH_PROFILE is set. */
const underTest = (name: string): string[] => (profileDir ? ["--cpu-prof", `--cpu-prof-dir=${path.join(profileDir, name)}`] : []);

// ---- the endpoints, each started once, on first use ----

interface Endpoint {
  /** What h2load and the check dial. */
  port: number;
  /** Process groups that serve this path (their CPU is counted per call). */
  groups: number[];
  /** Calls the instance at the end of the path has answered so far. */
  answered: () => Promise<number>;
}

const once = <T>(f: () => Promise<T>): (() => Promise<T>) => {
  let p: Promise<T> | undefined;
  return () => (p ??= f());
};
const portOf = (s: { ready: Record<string, unknown> }) => Number(s.ready.port);
const proxyDir = mkdtempSync(path.join(tmpdir(), "grpcrouter-bench-"));

const direct = once(async (): Promise<Endpoint> => {
  const s = await startRole("grpc-direct");
  return { port: portOf(s), groups: [s.pid], answered: s.answered };
});
const haproxy = once(async (): Promise<Endpoint> => {
  const d = await direct();
  const p = await startHaproxy(proxyDir, d.port);
  return { port: p.port, groups: [p.pid, ...d.groups], answered: d.answered };
});
const nginx = once(async (): Promise<Endpoint> => {
  const d = await direct();
  const p = await startNginx(proxyDir, d.port);
  return { port: p.port, groups: [p.pid, ...d.groups], answered: d.answered };
});
const routerRaw = once(async (): Promise<Endpoint> => {
  const router = await startRole("router", [], underTest("router"));
  const bridge = await startRole("raw-bridge", [`127.0.0.1:${portOf(router)}`], underTest("raw-bridge"));
  return { port: portOf(router), groups: [router.pid, bridge.pid], answered: bridge.answered };
});
/** Router + raw bridge with the bridge's extra arguments ([transport] [proxy]); its own processes. */
const routerWith = async (name: string, bridgeArgs: (routerPort: number) => Promise<string[]>): Promise<Endpoint> => {
  const router = await startRole("router", [], underTest(`${name}-router`));
  const bridge = await startRole("raw-bridge", [`127.0.0.1:${portOf(router)}`, ...(await bridgeArgs(portOf(router)))], underTest(`${name}-bridge`));
  return { port: portOf(router), groups: [router.pid, bridge.pid], answered: bridge.answered };
};
const routerWs = once(() => routerWith("ws", async () => ["websocket"]));
const routerProxy = once(() =>
  routerWith("proxy", async () => {
    const p = await startTinyproxy(proxyDir);
    return ["h2", `http://127.0.0.1:${p.port}`];
  }),
);
const serveSidecar = once(async (): Promise<Endpoint> => {
  const d = await direct();
  const serve = await startCli(["serve", ...echoModule, "--port", "0", "--no-dashboard", "--no-watch"], /router listening on (\S+):(\d+)/, {
    nodeFlags: underTest("serve"),
  });
  const address = `${serve.match[1]}:${serve.match[2]}`;
  const sidecar = await startCli(
    ["bridge", ...echoModule, "--target", `127.0.0.1:${d.port}`, "--router", address, "--id", "bench-sidecar"],
    /bench-sidecar registered demo\.v1\.Echo/,
    { nodeFlags: underTest("sidecar") },
  );
  return { port: Number(serve.match[2]), groups: [serve.pid, sidecar.pid, ...d.groups], answered: d.answered };
});
const connectNode = once(async (): Promise<Endpoint> => {
  const s = await startRole("connect-direct");
  return { port: portOf(s), groups: [s.pid], answered: s.answered };
});
const connectBridge = once(async (): Promise<Endpoint> => {
  const router = await startRole("router", [], underTest("connect-router"));
  const bridge = await startRole("connect-bridge", [`127.0.0.1:${portOf(router)}`], underTest("connect-bridge"));
  return { port: portOf(router), groups: [router.pid, bridge.pid], answered: bridge.answered };
});

// ---- the paths ----

interface PathDef {
  key: string;
  label: string;
  stream: boolean;
  /** The path this one is compared with; none for a baseline. */
  baseline?: string;
  endpoint: () => Promise<Endpoint>;
}

const PATHS: PathDef[] = [
  { key: "direct", label: "direct: bare grpc-js server", stream: false, endpoint: direct },
  { key: "haproxy", label: "HAProxy (h2, nbthread 1) → direct", stream: false, baseline: "direct", endpoint: haproxy },
  { key: "nginx", label: "nginx grpc_pass (1 worker) → direct", stream: false, baseline: "direct", endpoint: nginx },
  { key: "router-raw", label: "generated router + createRawBridge", stream: false, baseline: "direct", endpoint: routerRaw },
  { key: "router-ws", label: "router + raw bridge over WebSocket", stream: false, baseline: "router-raw", endpoint: routerWs },
  { key: "router-proxy", label: "router + raw bridge through tinyproxy", stream: false, baseline: "router-raw", endpoint: routerProxy },
  { key: "serve-sidecar", label: "grpcrouter serve + bridge --target direct", stream: false, baseline: "direct", endpoint: serveSidecar },
  { key: "connect-node", label: "probe ServiceImpl on connect-node", stream: false, endpoint: connectNode },
  { key: "connect-bridge", label: "generated router + Connect bridge (same impl)", stream: false, baseline: "connect-node", endpoint: connectBridge },
  { key: "stream-direct", label: `server streaming ×${STREAM_MESSAGES}: direct`, stream: true, endpoint: direct },
  { key: "stream-router", label: `server streaming ×${STREAM_MESSAGES}: router + raw bridge`, stream: true, baseline: "stream-direct", endpoint: routerRaw },
];
const INSTANCES_KEY = "instances";

/** The paths a filter selects, with the baselines their ratios need (router-raw: HAProxy too). */
function selectPaths(filters: string[]): { paths: PathDef[]; instances: boolean } {
  const all = filters.length === 0 || filters.some((f) => "dataplane".includes(f));
  const chosen = new Set(PATHS.filter((p) => all || filters.some((f) => p.key.includes(f))).map((p) => p.key));
  // Baselines of baselines too (router-ws → router-raw → direct), in the order PATHS lists them.
  for (const p of [...PATHS].reverse()) if (chosen.has(p.key) && p.baseline) chosen.add(p.baseline);
  if (chosen.has("router-raw")) chosen.add("haproxy");
  return { paths: PATHS.filter((p) => chosen.has(p.key)), instances: all || filters.some((f) => INSTANCES_KEY.includes(f)) };
}

// ---- measuring ----

interface Measurement {
  rps: number;
  p50Us: number;
  p99Us: number;
  /** CPU time of the serving processes per call (µs), over the measured phase (≈). */
  cpuUs: number;
  failed: number;
}

/**
 * One h2load run, with the serving processes' CPU and the instance's count of answered calls
 * read just before and after it. h2load counts HTTP 200s; a call it counts that the
 * instance never answered was a gRPC error made on the way (a limit, no instance, …).
 */
async function load(spec: H2loadSpec, ep: Endpoint): Promise<{ r: H2loadResult; cpuUs: number; unanswered: number }> {
  const [a0, c0] = [await ep.answered(), groupCpuMs(ep.groups)];
  const r = await runH2load(spec);
  const [c1, a1] = [groupCpuMs(ep.groups), await ep.answered()];
  const answered = a1 - a0;
  return { r, cpuUs: ((c1 - c0) * 1000) / Math.max(1, answered), unanswered: Math.max(0, r.succeeded - answered) };
}

async function check(p: PathDef, port: number, when: string): Promise<void> {
  try {
    if (p.stream) await checkServerStream(`127.0.0.1:${port}`, COUNT, STREAM_MESSAGES);
    else await checkUnary(`127.0.0.1:${port}`, SAY);
  } catch (e) {
    throw new Error(`${p.key}: the gRPC call ${when} failed: ${e instanceof Error ? e.message : String(e)}`);
  }
}

async function measure(p: PathDef): Promise<Measurement> {
  const ep = await p.endpoint();
  await check(p, ep.port, "before the load");
  const url = `http://127.0.0.1:${ep.port}${p.stream ? COUNT : SAY}`;
  const base = REQUESTS ? { url, message: EMPTY, requests: REQUESTS } : { url, message: EMPTY, seconds: SECONDS };
  const throughput = { ...base, clients: CLIENTS, streams: STREAMS };
  // The warm-up is a run of its own, so the measured runs' counts and CPU cover only them.
  if (!REQUESTS && WARMUP > 0) await runH2load({ ...throughput, seconds: WARMUP, warmupOnly: true });
  const t = await load(throughput, ep);
  // Latency at one outstanding call (for streams: until the last message and trailers).
  const l = await load({ ...base, clients: 1, streams: 1, latency: true }, ep);
  await check(p, ep.port, "after the load");
  const unanswered = t.unanswered + l.unanswered;
  if (unanswered > 0) {
    throw new Error(
      `${p.key}: ${unanswered} calls h2load counted as HTTP 200 never reached the instance: gRPC errors on the way (throughput run ${t.unanswered}, latency run ${l.unanswered})`,
    );
  }
  return {
    rps: t.r.requestsPerSecond,
    p50Us: l.r.p50Us!,
    p99Us: l.r.p99Us!,
    cpuUs: t.cpuUs,
    failed: t.r.failed + t.r.errored + t.r.timeout + l.r.failed + l.r.errored + l.r.timeout,
  };
}

const STAT = process.env.BENCH_STAT === "median" ? "median" : "best";
if (process.env.BENCH_STAT && process.env.BENCH_STAT !== STAT) throw new Error(`BENCH_STAT=${process.env.BENCH_STAT}: expected best or median`);
/** The figure of several rounds: the best (highest for throughput, lowest for costs) or the median. */
const pick = (xs: number[], higherIsBetter: boolean): number => (STAT === "median" ? median(xs) : higherIsBetter ? Math.max(...xs) : Math.min(...xs));

// ---- 10,000 instances ----

interface InstancesResult {
  instances: number;
  loaders: number;
  /** Instances welcomed by the router (all of them unless the deadline passed). */
  registered: number;
  /** NaN when not all registered within BENCH_REGISTER_DEADLINE. */
  registerSeconds: number;
  healthP50Ms: number;
  healthP99Ms: number;
  healthMaxMs: number;
  healthChecks: number;
  healthErrors: number;
  /** Register streams the router turned away (RESOURCE_EXHAUSTED) and the bridges retried. */
  turnedAway: number;
  /** Source addresses the instances dialled from. */
  addresses: number;
  /** The router's Hellos-per-second limit, and the least time it allows for every instance. */
  hellosPerSecond: number;
  minSecondsByHelloRate: number;
  /** The same growth of a bare node:http2 server holding as many connections, one open stream each (KiB). */
  transportKiBPerConnection: number;
  /** Growth of the router's resident memory per registered instance (KiB). */
  rssKiBPerInstance: number;
  /** CPU time the router and the loader processes used while the instances registered. */
  routerCpuSeconds: number;
  loadersCpuSeconds: number;
}

function rssKiB(pid: number): number {
  try {
    const m = readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+) kB/);
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

/** grpc.health.v1.HealthCheckRequest{service}, encoded by hand (field 1, length-delimited). */
const healthRequest = (service: string) => Buffer.concat([Buffer.from([0x0a, service.length]), Buffer.from(service)]);

/**
 * The transport's share of the memory per instance, measured the same way: a bare node:http2
 * server (h2-hold) while the loaders open as many connections, from the same addresses, each
 * with one open stream. One HTTP/2 connection per instance is what instances on their own
 * hosts open; nghttp2 alone allocates ~16 KiB per session for its output frame buffer.
 */
async function transportFloor(): Promise<number> {
  const hold = await startRole("h2-hold");
  const loaders: Role[] = [];
  try {
    const address = `127.0.0.1:${portOf(hold)}`;
    await new Promise((r) => setTimeout(r, 500));
    const rss0 = rssKiB(hold.pid);
    const per = Math.ceil(INSTANCES / LOADERS);
    for (let i = 0; i < LOADERS; i++) {
      const n = Math.min(per, INSTANCES - i * per);
      if (n > 0) loaders.push(await startRole("h2-clients", [address, String(n), "", String(i * per), String(PER_ADDRESS)]));
    }
    for (const l of loaders) l.child.stdin!.write("go\n");
    await Promise.all(
      loaders.map(async (l) => {
        for (;;) if (((await l.next(REGISTER_DEADLINE * 1000 + 60_000)) as { registered?: number }).registered !== undefined) return;
      }),
    );
    await new Promise((r) => setTimeout(r, 1000));
    return (rssKiB(hold.pid) - rss0) / INSTANCES;
  } finally {
    await Promise.all(loaders.map((l) => stop(l)));
    await stop(hold);
  }
}

async function registerInstances(): Promise<InstancesResult> {
  // As users run it: with its dashboard (the admin hub and metrics see every instance).
  const serve = await startCli(["serve", ...echoModule, "--port", "0", "--admin-port", "0", "--no-watch"], /router listening on (\S+:\d+)/, {
    nodeFlags: underTest("serve-instances"),
    bundled: true,
  });
  const address = serve.match[1]!;
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const loaders: Role[] = [];
  try {
    const req = healthRequest("demo.v1.Echo");
    await unaryCall(client, HEALTH_CHECK, req); // connected, warm
    const rss0 = rssKiB(serve.pid);
    const per = Math.ceil(INSTANCES / LOADERS);
    for (let i = 0; i < LOADERS; i++) {
      const n = Math.min(per, INSTANCES - i * per);
      if (n > 0) loaders.push(await startRole("instances", [address, String(n), `bench-${i}`, String(i * per), String(PER_ADDRESS)], underTest(`loader-${i}`)));
    }
    // Each loader reports progress, then {"registered"} once all its bridges are welcomed.
    const counts = loaders.map(() => 0);
    const turnedAway = loaders.map(() => 0);
    let settle!: (e?: Error) => void;
    const all = new Promise<void>((resolve, reject) => (settle = (e) => (e ? reject(e) : resolve())));
    all.catch(() => {});
    let pending = loaders.length;
    loaders.forEach((l, i) => {
      void (async () => {
        for (;;) {
          const msg = (await l.next(REGISTER_DEADLINE * 1000 + 60_000)) as { progress?: number; registered?: number; turnedAway?: number };
          counts[i] = msg.registered ?? msg.progress ?? counts[i]!;
          turnedAway[i] = msg.turnedAway ?? turnedAway[i]!;
          if (msg.registered !== undefined) break;
        }
        if (--pending === 0) settle();
      })().catch((e: unknown) => settle(e instanceof Error ? e : new Error(String(e))));
    });
    // Past the deadline the bench stops waiting and reports how many made it.
    let timedOut = false;
    const deadline = setTimeout(() => {
      timedOut = true;
      settle();
    }, REGISTER_DEADLINE * 1000);
    const cpu0 = [groupCpuMs([serve.pid]), groupCpuMs(loaders.map((l) => l.pid))];
    const t0 = performance.now();
    if (process.env.BENCH_DEBUG) console.log(`  go at ${new Date().toISOString()}`);
    for (const l of loaders) l.child.stdin!.write("go\n");
    let finished = false;
    void all
      .finally(() => {
        finished = true;
        clearTimeout(deadline);
      })
      .catch(() => {});
    // A Check every 10 ms while the instances register, each sent on time whether or not the
    // one before was answered, as a prober (a load balancer's, Kubernetes') sends them: a
    // stall counts for every Check it holds. (Waiting for each answer before the next Check
    // counted a 7 s stall as one slow Check among hundreds, and hid it from the p99.)
    const latencies: number[] = [];
    const checks = new Set<Promise<void>>();
    let errors = 0;
    let slowUntil = 0;
    while (!finished) {
      const t = performance.now();
      const check = unaryCall(client, HEALTH_CHECK, req, 10_000)
        .then(
          () => {},
          () => {
            errors++;
          },
        )
        .then(() => {
          const ms = performance.now() - t;
          latencies.push(ms);
          // The first Check a stall held, once per stall.
          if (process.env.BENCH_DEBUG && ms > 500 && t >= slowUntil) {
            slowUntil = t + ms;
            console.log(`  slow Check: ${fmt(ms)} ms, sent ${fmt((t - t0) / 1000, 1)} s after go (${new Date(Date.now() - ms).toISOString()})`);
          }
          checks.delete(check);
        });
      checks.add(check);
      await new Promise((r) => setTimeout(r, 10));
    }
    await Promise.all(checks);
    await all;
    // Who spent the CPU meanwhile: the router, or the processes pretending to be instances.
    const routerCpuSeconds = (groupCpuMs([serve.pid]) - cpu0[0]!) / 1000;
    const loadersCpuSeconds = (groupCpuMs(loaders.map((l) => l.pid)) - cpu0[1]!) / 1000;
    const registerSeconds = timedOut ? NaN : (performance.now() - t0) / 1000;
    const registered = counts.reduce((a, b) => a + b, 0);
    if (!timedOut) {
      // Every instance is routable: the service is SERVING, and a call goes through one.
      const status = await unaryCall(client, HEALTH_CHECK, req);
      if (!status.equals(Buffer.from([0x08, 0x01])))
        throw new Error(`instances: health of demo.v1.Echo is not SERVING after registration (${status.toString("hex")})`);
      await checkUnary(address, SAY);
    }
    // Memory once the registrations settled (a second for late garbage to be collected).
    await new Promise((r) => setTimeout(r, 1000));
    const rss1 = rssKiB(serve.pid);
    latencies.sort((a, b) => a - b);
    const hellosPerSecond = new RegistrationLimits().hellosPerSecond;
    return {
      instances: INSTANCES,
      loaders: loaders.length,
      registered,
      registerSeconds,
      healthP50Ms: percentile(latencies, 50),
      healthP99Ms: percentile(latencies, 99),
      healthMaxMs: latencies[latencies.length - 1] ?? NaN,
      healthChecks: latencies.length,
      healthErrors: errors,
      turnedAway: turnedAway.reduce((a, b) => a + b, 0),
      addresses: Math.ceil(INSTANCES / PER_ADDRESS),
      hellosPerSecond,
      // The bucket starts full (one second's worth), then refills at the rate.
      minSecondsByHelloRate: Math.max(0, (INSTANCES - hellosPerSecond) / hellosPerSecond),
      transportKiBPerConnection: NaN,
      rssKiBPerInstance: (rss1 - rss0) / registered,
      routerCpuSeconds,
      loadersCpuSeconds,
    };
  } finally {
    client.close();
    await Promise.all(loaders.map((l) => stop(l)));
    await stop(serve, 15_000);
  }
}

// ---- the report ----

/** A difference with its sign, e.g. "+72" or "−15". */
const signed = (n: number) => (n < 0 ? `−${fmt(-n)}` : `+${fmt(n)}`);

interface Row {
  path: PathDef;
  m?: Measurement;
  error?: string;
}

interface Target {
  what: string;
  value: string;
  met: boolean | undefined;
  /** What bounds it, printed when it is not met (the profiles are in docs/performance.md). */
  bound?: string;
}

// What the profiles in docs/performance.md found bounding each target on a 2-core machine;
// the bench says it beside a target it did not meet, so a reader need not guess.
const HOT_PATH_BOUND =
  'node:http2 is most of the router\'s CPU (native nghttp2 and libuv ≈ 26 %, GC ≈ 22 %, its header objects; our files ≈ 12 %) — "The hot path, again"';
const BOUNDS = {
  throughput: HOT_PATH_BOUND,
  p50: 'at one call outstanding, syscalls: per call the router reads twice and writes three times (node sends trailers a turn after headers and data, as grpc-js does) — "The hot path, again"',
  p99: 'a scheduling hiccup of the three-process path (client, router, bridge) on a shared 2-core machine: it moves between rounds of one run more than between builds — "The hot path, again"',
  sidecar:
    'three Node processes per call on 2 cores: 0.6 × needs serve + sidecar ≤ ≈ 54 CPU µs a call, while a bare node:http2 server and client alone take ≈ 80 — "The sidecar\'s cost per call"',
  sidecarP50:
    'three node:http2 hops (client → router → sidecar → target), each with its own reads, writes and event-loop turns — "The sidecar\'s cost per call"',
  register:
    'the Hello-rate limit (Register streams over it are turned away and retry after a hint) and the loaders\' own CPU on the same 2 cores — "10,000 instances, again"',
  memory: 'nghttp2\'s own session (≈ 23 KiB each, whatever the SETTINGS) with one HTTP/2 connection per instance — "10,000 instances, again"',
  proxy:
    'tinyproxy relays the Register stream\'s bytes through one more process: a read and a write each way per Register message, on the same 2 cores — "The WebSocket fallback and a CONNECT proxy"',
  health:
    'setting up each new session costs the router ≈ 300 CPU µs (node:http2 ≈ 45 %, GC ≈ 15 %); the pacer bounds each turn, GC pauses remain — "10,000 instances, again"',
};

function targets(rows: Map<string, Row>, inst: InstancesResult | undefined, instError: string | undefined): Target[] {
  const m = (k: string) => rows.get(k)?.m;
  const d = m("direct");
  const out: Target[] = [];
  const ratio = (k: string, base: Measurement | undefined) => {
    const x = m(k);
    return x && base ? x.rps / base.rps : undefined;
  };
  const add = (what: string, v: number | undefined, ok: (v: number) => boolean, show: (v: number) => string, bound?: string) =>
    out.push({ what, value: v === undefined ? "not run" : show(v), met: v === undefined ? undefined : ok(v), bound });
  const times = (v: number) => `${fmt(v, 2)}×`;
  const us = (v: number) => `${fmt(v)} µs`;
  add("router + raw bridge ≥ 1.0 × direct", ratio("router-raw", d), (v) => v >= 1, times, BOUNDS.throughput);
  add("router + raw bridge ≥ 1.0 × HAProxy", ratio("router-raw", m("haproxy")), (v) => v >= 1, times, BOUNDS.throughput);
  const rr = m("router-raw");
  const hp = m("haproxy");
  add(
    `router + raw bridge added p50 ≤ 80 µs${hp && d ? ` (HAProxy: ${signed(hp.p50Us - d.p50Us)} µs)` : ""}`,
    rr && d ? rr.p50Us - d.p50Us : undefined,
    (v) => v <= 80,
    us,
    BOUNDS.p50,
  );
  add("router + raw bridge p99 ≤ 2 × direct p99", rr && d ? rr.p99Us / d.p99Us : undefined, (v) => v <= 2, times, BOUNDS.p99);
  add("serve + sidecar ≥ 0.6 × direct", ratio("serve-sidecar", d), (v) => v >= 0.6, times, BOUNDS.sidecar);
  const sc = m("serve-sidecar");
  add("serve + sidecar added p50 ≤ 250 µs", sc && d ? sc.p50Us - d.p50Us : undefined, (v) => v <= 250, us, BOUNDS.sidecarP50);
  add("Connect bridge ≥ 2 × connect-node", ratio("connect-bridge", m("connect-node")), (v) => v >= 2, times);
  add("router + raw bridge over WebSocket ≥ 0.7 × over HTTP/2", ratio("router-ws", rr), (v) => v >= 0.7, times);
  const px = m("router-proxy");
  add(
    "a CONNECT proxy on the bridge's path: added p50 ≤ 50 µs",
    px && rr ? px.p50Us - rr.p50Us : undefined,
    (v) => v <= 50,
    (v) => `${signed(v)} µs`,
    BOUNDS.proxy,
  );
  add("server streaming through the router ≥ 1.0 × direct (msgs/s)", ratio("stream-router", m("stream-direct")), (v) => v >= 1, times);
  if (instError) {
    out.push({ what: `${fmt(INSTANCES)} instances registered ≤ 5 s`, value: `failed: ${instError}`, met: false, bound: BOUNDS.register });
  } else {
    if (inst && inst.registered < inst.instances) {
      out.push({
        what: `${fmt(INSTANCES)} instances registered ≤ 5 s`,
        value: `only ${fmt(inst.registered)} after ${REGISTER_DEADLINE} s`,
        met: false,
        bound: BOUNDS.register,
      });
    } else
      add(
        `${fmt(INSTANCES)} instances registered ≤ 5 s`,
        inst?.registerSeconds,
        (v) => v <= 5,
        (v) => `${fmt(v, 2)} s`,
        // The CPU the storm took, router and loaders together, spread over this machine's
        // cores: no schedule finishes sooner.
        inst
          ? `${BOUNDS.register}; this run: router ${fmt(inst.routerCpuSeconds, 1)} s + loaders ${fmt(inst.loadersCpuSeconds, 1)} s of CPU ÷ ${cpus().length} cores ≥ ${fmt((inst.routerCpuSeconds + inst.loadersCpuSeconds) / cpus().length, 1)} s`
          : BOUNDS.register,
      );
    if (inst && inst.minSecondsByHelloRate > 5) {
      out.push({
        what: `  (the router's ${fmt(inst.hellosPerSecond)} Hellos/s limit allows ${fmt(INSTANCES)} in no less than)`,
        value: `${fmt(inst.minSecondsByHelloRate, 1)} s`,
        met: false,
      });
    }
    add(
      "router memory ≤ 16 KiB per instance (RSS growth)",
      inst?.rssKiBPerInstance,
      (v) => v <= 16,
      (v) => `${fmt(v, 1)} KiB`,
      BOUNDS.memory,
    );
    if (inst && Number.isFinite(inst.transportKiBPerConnection)) {
      out.push({
        what: "  (node:http2 alone, one connection per instance, same run)",
        value: `${fmt(inst.transportKiBPerConnection, 1)} KiB`,
        met: inst.transportKiBPerConnection <= 16,
      });
    }
    add(
      "health Check p99 ≤ 50 ms meanwhile",
      inst?.healthP99Ms,
      (v) => v <= 50,
      (v) => `${fmt(v, 1)} ms (max ${fmt(inst!.healthMaxMs, 0)} ms, ${inst!.healthChecks} checks${inst!.healthErrors ? `, ${inst!.healthErrors} failed` : ""})`,
      BOUNDS.health,
    );
  }
  return out;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(" | ")} |`;
  return [line(header), `|${widths.map((w, i) => (i === 0 ? "-".repeat(w + 2) : `${"-".repeat(w + 1)}:`)).join("|")}|`, ...rows.map(line)].join("\n");
}

function report(rows: Map<string, Row>): string {
  const hp = rows.get("haproxy")?.m;
  const body: string[][] = [];
  for (const { path: p, m, error } of rows.values()) {
    if (!m) {
      body.push([p.label, `FAILED: ${error ?? "?"}`, "", "", "", "", "", "", "", ""]);
      continue;
    }
    const b = p.baseline ? rows.get(p.baseline)?.m : undefined;
    const vsHaproxy = !p.stream && p.baseline === "direct" && hp && p.key !== "haproxy" ? `${fmt(m.rps / hp.rps, 2)}` : "";
    body.push([
      p.label + (m.failed ? ` (${m.failed} failed)` : ""),
      fmt(p.stream ? m.rps * STREAM_MESSAGES : m.rps),
      b ? `${fmt(m.rps / b.rps, 2)} ${p.baseline}` : "1.00",
      vsHaproxy,
      fmt(m.p50Us),
      fmt(m.p99Us),
      b ? signed(m.p50Us - b.p50Us) : "",
      b ? signed(m.p99Us - b.p99Us) : "",
      b ? `${fmt(m.p99Us / b.p99Us, 1)}×` : "",
      fmt(m.cpuUs),
    ]);
  }
  return table(["path", "req/s (msgs/s)", "× baseline", "× HAProxy", "p50 µs", "p99 µs", "added p50 µs", "added p99 µs", "p99 × baseline", "CPU µs/req"], body);
}

// ---- main ----

const filters = process.argv.slice(2);
const { paths, instances } = selectPaths(filters);
if (paths.length === 0 && !instances) {
  console.error(`no data-plane path matches ${filters.join(", ")}: the paths are ${[...PATHS.map((p) => p.key), INSTANCES_KEY].join(", ")}`);
  process.exit(2);
}
let failed = false;
try {
  console.log(
    `data plane: h2load (1 thread), throughput ${CLIENTS} connections × ${STREAMS} streams, latency at 1 outstanding call; ` +
      `${WARMUP} s warm-up + ${SECONDS} s per run, ${ROUNDS} round(s)${ROUNDS > 1 ? ` alternating, ${STAT === "median" ? "medians" : "best of them"}` : ""}; empty request and response messages`,
  );
  console.log(`machine: ${cpus().length} CPUs, load average ${loadAverage()} at the start (the ratios are measured side by side; the load moves them)`);
  console.log(
    `runtime under test: ${process.env.BENCH_RUNTIME === "source" ? "the TypeScript sources through tsx (BENCH_RUNTIME=source)" : "the compiled JavaScript (dist), as installed"}`,
  );
  const runs = new Map<string, Measurement[]>(paths.map((p) => [p.key, []]));
  const errors = new Map<string, string>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const p of paths) {
      if (errors.has(p.key)) continue;
      try {
        const m = await measure(p);
        runs.get(p.key)!.push(m);
        console.log(`  ${p.key}: ${fmt(m.rps)} req/s, p50 ${fmt(m.p50Us)} µs, p99 ${fmt(m.p99Us)} µs${m.failed ? `, ${m.failed} failed` : ""}`);
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        errors.set(p.key, msg.split("\n")[0]!);
        failed = true;
        console.error(`\n!! ${p.key} FAILED: ${msg}\n`);
      }
    }
  }
  const rows = new Map<string, Row>();
  for (const p of paths) {
    const ms = runs.get(p.key)!;
    const error = errors.get(p.key);
    if (ms.length === 0) {
      rows.set(p.key, { path: p, error: error ?? "no run" });
      continue;
    }
    rows.set(p.key, {
      path: p,
      m: {
        rps: pick(
          ms.map((x) => x.rps),
          true,
        ),
        p50Us: pick(
          ms.map((x) => x.p50Us),
          false,
        ),
        p99Us: pick(
          ms.map((x) => x.p99Us),
          false,
        ),
        cpuUs: pick(
          ms.map((x) => x.cpuUs),
          false,
        ),
        failed: ms.reduce((n, x) => n + x.failed, 0),
      },
    });
  }
  // The unary paths are done: their processes go before the registration storm.
  await stopAll();

  let inst: InstancesResult | undefined;
  let instError: string | undefined;
  if (instances) {
    console.log(`  ${INSTANCES_KEY}: ${fmt(INSTANCES)} raw bridges in ${LOADERS} processes registering with grpcrouter serve…`);
    try {
      inst = await registerInstances();
      inst.transportKiBPerConnection = await transportFloor();
    } catch (e) {
      instError = (e instanceof Error ? e.message : String(e)).split("\n")[0]!;
      failed = true;
      console.error(`\n!! ${INSTANCES_KEY} FAILED: ${e instanceof Error ? e.message : String(e)}\n`);
    }
  }

  console.log(
    `\nload average ${loadAverage()} at the end; CPU µs/req counts every process serving the path (a proxy's row includes the direct server behind it)`,
  );
  if (paths.length) console.log(`\n${report(rows)}`);
  if (inst) {
    console.log(
      `\n${fmt(inst.instances)} instances (${inst.loaders} loader processes, ${fmt(inst.addresses)} source addresses) registering with grpcrouter serve: ` +
        (inst.registered < inst.instances
          ? `only ${fmt(inst.registered)} registered after ${REGISTER_DEADLINE} s; `
          : `all registered in ${fmt(inst.registerSeconds, 2)} s; `) +
        `grpc.health.v1 Check meanwhile: p50 ${fmt(inst.healthP50Ms, 1)} ms, p99 ${fmt(inst.healthP99Ms, 1)} ms, max ${fmt(inst.healthMaxMs, 0)} ms ` +
        `(${inst.healthChecks} checks${inst.healthErrors ? `, ${inst.healthErrors} failed` : ""}); ` +
        `${fmt(inst.turnedAway)} Register streams turned away and retried (the router's limit: ${fmt(inst.hellosPerSecond)} Hellos/s, so ≥ ${fmt(inst.minSecondsByHelloRate, 1)} s for all); ` +
        `router memory +${fmt(inst.rssKiBPerInstance, 1)} KiB per instance, of which node:http2 alone holding as many connections (a bare server, same run) +${fmt(inst.transportKiBPerConnection, 1)} KiB: the router's own +${fmt(inst.rssKiBPerInstance - inst.transportKiBPerConnection, 1)} KiB; ` +
        `CPU meanwhile: router ${fmt(inst.routerCpuSeconds, 1)} s, loaders ${fmt(inst.loadersCpuSeconds, 1)} s`,
    );
  }
  const t = targets(rows, inst, instError).filter((x) => x.met !== undefined);
  if (t.length) {
    console.log(
      `\ntargets (issues 9, 16)\n${table(
        ["target", "measured", "met"],
        t.map((x) => [x.what, x.value, x.met ? "met" : "NOT MET"]),
      )}`,
    );
    const bounded = t.filter((x) => x.met === false && x.bound);
    if (bounded.length) {
      console.log(`\nwhat bounds the targets not met (docs/performance.md, the named section, has the CPU profiles):`);
      for (const x of bounded) console.log(`- ${x.what.trim()}: ${x.bound}`);
    }
  }
  if (process.env.BENCH_JSON) {
    const json = {
      settings: { seconds: SECONDS, warmup: WARMUP, rounds: ROUNDS, clients: CLIENTS, streams: STREAMS, streamMessages: STREAM_MESSAGES },
      paths: [...rows.values()].map((r) => ({ key: r.path.key, label: r.path.label, ...(r.m ?? {}), ...(r.error ? { error: r.error } : {}) })),
      instances: inst ?? (instError ? { error: instError } : undefined),
      targets: t,
    };
    writeFileSync(process.env.BENCH_JSON, JSON.stringify(json, null, 2));
  }
} finally {
  await stopAll();
  rmSync(proxyDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
