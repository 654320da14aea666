// `npm run bench -- routers`: issue 12's targets, several routers of one deployment.
//
//   calls       `grpcrouter serve` on 127.0.0.2, .3 and .4 (same port, as pods) with two sidecar
//               bridges (`grpcrouter bridge --target` a bare grpc-js Echo, registered with all
//               three), against one router with the same two bridges. h2load drives each
//               setup with the same load: BENCH_ROUTER_CLIENTS (3) h2load processes at once, each
//               BENCH_CLIENTS (2) connections × BENCH_STREAMS (32) streams, for BENCH_SECONDS (3)
//               after BENCH_WARMUP (1); with three routers each h2load dials its own router (as
//               a client's load balancer spreads over the pods).
//   joins       BENCH_JOIN_INSTANCES (1,000) raw bridges in 2 loader processes join all three
//               routers at once, 100 per loopback source address: registrations per second.
//
// The target (≥ 2.5 × one router) assumes cores for three routers; this machine may have two,
// so the report gives the ratio, the ratio per core used (calls per CPU-second of every
// process on the path), and the machine's cores. Nothing is asserted.
import { cpus } from "node:os";
import { checkUnary } from "./check.js";
import { echoModule, env, fmt, loadAverage, SAY } from "./common.js";
import { runH2load, type H2loadResult } from "./h2load.js";
import { freePort, groupCpuMs, startCli, startRole, stop, stopAll, type Role, type Started } from "./processes.js";

const SECONDS = env("BENCH_SECONDS", 3);
const WARMUP = env("BENCH_WARMUP", 1);
const H2LOADS = Math.max(1, env("BENCH_ROUTER_CLIENTS", 3));
const CLIENTS = Math.max(1, env("BENCH_CLIENTS", 2));
const STREAMS = Math.max(1, env("BENCH_STREAMS", 32));
const JOIN = Math.max(1, env("BENCH_JOIN_INSTANCES", 1000));
const HOSTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];

interface Throughput {
  rps: number;
  /** Calls per CPU-second of every process on the path (routers, bridges, the instance). */
  perCpuSecond: number;
  failed: number;
}

async function startRouters(hosts: string[], port: number): Promise<Started[]> {
  return Promise.all(
    hosts.map((h) => startCli(["serve", ...echoModule, "--host", h, "--port", String(port), "--no-dashboard", "--no-watch"], /router listening on/)),
  );
}

/** Two sidecars in front of the direct server, registered with every router in `hosts`. */
async function startSidecars(direct: number, hosts: string[], port: number): Promise<Started[]> {
  const routers = hosts.map((h) => `${h}:${port}`).join(",");
  const out: Started[] = [];
  for (const id of ["sidecar-1", "sidecar-2"]) {
    const s = await startCli(
      ["bridge", ...echoModule, "--target", `127.0.0.1:${direct}`, "--router", routers, "--id", id],
      new RegExp(`${id} registered demo\\.v1\\.Echo`),
    );
    out.push(s);
  }
  // Registered with every router: a real call through each goes through.
  for (const h of hosts) {
    for (let tries = 0; ; tries++) {
      try {
        await checkUnary(`${h}:${port}`, SAY);
        break;
      } catch (e) {
        if (tries > 100) throw e;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }
  return out;
}

async function measure(hosts: string[], port: number, groups: number[]): Promise<Throughput> {
  const spec = (i: number) => ({ url: `http://${hosts[i % hosts.length]}:${port}${SAY}`, message: new Uint8Array(0), clients: CLIENTS, streams: STREAMS });
  await Promise.all(Array.from({ length: H2LOADS }, (_, i) => runH2load({ ...spec(i), seconds: WARMUP })));
  const c0 = groupCpuMs(groups);
  const rs: H2loadResult[] = await Promise.all(Array.from({ length: H2LOADS }, (_, i) => runH2load({ ...spec(i), seconds: SECONDS, warmupSeconds: 0 })));
  const cpuSeconds = (groupCpuMs(groups) - c0) / 1000;
  const rps = rs.reduce((n, r) => n + r.requestsPerSecond, 0);
  return { rps, perCpuSecond: (rps * SECONDS) / cpuSeconds, failed: rs.reduce((n, r) => n + r.failed + r.errored, 0) };
}

/** 1,000 instances join all three routers at once: seconds until each is registered with all. */
async function joins(port: number): Promise<{ seconds: number; registrations: number }> {
  const routers = HOSTS.map((h) => `${h}:${port}`).join(",");
  const per = Math.ceil(JOIN / 2);
  const loaders: Role[] = [];
  try {
    for (let i = 0; i < 2; i++)
      loaders.push(await startRole("instances", [routers, String(Math.min(per, JOIN - i * per)), `join-${i}`, String(i * per), "100"]));
    const t0 = performance.now();
    for (const l of loaders) l.child.stdin!.write("go\n");
    await Promise.all(
      loaders.map(async (l) => {
        for (;;) if (((await l.next(180_000)) as { registered?: number }).registered !== undefined) return;
      }),
    );
    return { seconds: (performance.now() - t0) / 1000, registrations: JOIN * HOSTS.length };
  } finally {
    await Promise.all(loaders.map((l) => stop(l)));
  }
}

try {
  console.log(
    `several routers: ${H2LOADS} h2load × ${CLIENTS} connections × ${STREAMS} streams, ${WARMUP} s warm-up + ${SECONDS} s; machine: ${cpus().length} CPUs, load average ${loadAverage()}`,
  );
  const direct = await startRole("grpc-direct");
  const port = await freePort("127.0.0.2");

  const [one] = await startRouters([HOSTS[0]!], port);
  let sidecars = await startSidecars(Number(direct.ready.port), [HOSTS[0]!], port);
  const single = await measure([HOSTS[0]!], port, [one!.pid, ...sidecars.map((s) => s.pid), direct.pid]);
  await Promise.all(sidecars.map((s) => stop(s)));
  await stop(one!);

  const three = await startRouters(HOSTS, port);
  sidecars = await startSidecars(Number(direct.ready.port), HOSTS, port);
  const triple = await measure(HOSTS, port, [...three.map((r) => r.pid), ...sidecars.map((s) => s.pid), direct.pid]);
  await Promise.all(sidecars.map((s) => stop(s)));
  const join = await joins(port);

  const ratio = triple.rps / single.rps;
  console.log(`\n| setup | calls/s | calls per CPU-second | failed |\n|---|--:|--:|--:|`);
  console.log(`| one router, two sidecars | ${fmt(single.rps)} | ${fmt(single.perCpuSecond)} | ${single.failed} |`);
  console.log(`| three routers, two sidecars | ${fmt(triple.rps)} | ${fmt(triple.perCpuSecond)} | ${triple.failed} |`);
  console.log(
    `\nthree routers ÷ one: ${fmt(ratio, 2)}× calls/s on ${cpus().length} cores (target ≥ 2.5× with cores for three routers); per core used: ${fmt(triple.perCpuSecond / single.perCpuSecond, 2)}× calls per CPU-second`,
  );
  console.log(
    `${fmt(JOIN)} instances joined three routers in ${fmt(join.seconds, 2)} s: ${fmt(join.registrations / join.seconds)} registrations/s (${fmt(JOIN / join.seconds)} instances/s, each registered with all three)`,
  );
  console.log(`load average ${loadAverage()} at the end`);
} finally {
  await stopAll();
}
