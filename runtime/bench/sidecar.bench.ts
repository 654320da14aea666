// `npm run bench -- sidecar-cost`: where the CPU of `grpcrouter serve` + `grpcrouter bridge
// --target` goes, process by process, and what that means for issue 9's targets (serve +
// sidecar ≥ 0.6 × direct, added p50 ≤ 250 µs).
//
// One direct grpc-js server (identity serializers) is the target; h2load calls it directly,
// then through serve + sidecar (the CLI bundle, as users run it). Per round and path:
// BENCH_WARMUP_REQUESTS (8,000) calls of warm-up, BENCH_REQUESTS (30,000) at BENCH_CLIENTS ×
// BENCH_STREAMS (4 × 32) with the CPU of each process (from /proc) and of h2load per call,
// then BENCH_LATENCY_REQUESTS (3,000) at one outstanding for the p50 and the CPU per call
// there. BENCH_ROUNDS (3) rounds; medians. A call that fails makes the bench exit 1.
//
// BENCH_BASELINE=<a CLI bundle, e.g. another checkout's cli/dist/grpcrouter.js> adds a second
// serve + sidecar pair from that bundle, alternating with this one round by round: an A/B of
// two builds in the same run on a shared machine. Nothing is asserted.
//
// The bound it prints, from the CPU per call (what an otherwise idle machine allows): with
// h2load's one thread, direct is one Node process per call, at best 10⁶ / D calls/s; serve +
// sidecar is three (router R, sidecar S, target T) plus h2load H on the machine's cores, at
// best cores × 10⁶ / (R + S + T + H); so 0.6 × direct needs R + S under what is left.
import { existsSync, readFileSync } from "node:fs";
import { cpus } from "node:os";
import path from "node:path";
import { checkUnary } from "./check.js";
import { echoModule, env, fmt, loadAverage, median, SAY } from "./common.js";
import { runH2load } from "./h2load.js";
import { groupCpuMs, repoRoot, startCli, startRole, stopAll } from "./processes.js";

const ROUNDS = Math.max(1, env("BENCH_ROUNDS", 3));
const REQUESTS = Math.max(100, env("BENCH_REQUESTS", 30_000));
const CLIENTS = Math.max(1, env("BENCH_CLIENTS", 4));
const STREAMS = Math.max(1, env("BENCH_STREAMS", 32));
const WARMUP_REQUESTS = env("BENCH_WARMUP_REQUESTS", 8000);
const LATENCY_REQUESTS = Math.max(100, env("BENCH_LATENCY_REQUESTS", 3000));
const EMPTY = new Uint8Array(0);
const baseline = process.env.BENCH_BASELINE ? path.resolve(process.env.BENCH_BASELINE) : undefined;

/** CPU ms of this process's reaped children (h2load, once it has exited). */
function childrenCpuMs(): number {
  const f = readFileSync("/proc/self/stat", "utf8").split(") ")[1]!.split(" ");
  return (Number(f[13]) + Number(f[14])) * 10; // cutime, cstime; USER_HZ 100
}

interface Path {
  name: string;
  port: number;
  serve?: number;
  sidecar?: number;
}

interface Row {
  rps: number;
  p50: number;
  /** CPU µs per call under load: serve, sidecar, target, h2load. */
  serve: number;
  sidecar: number;
  target: number;
  h2load: number;
  /** CPU µs per call at one outstanding: serve, sidecar, target. */
  serve1: number;
  sidecar1: number;
  target1: number;
}

async function main(): Promise<void> {
  console.log(
    `sidecar cost: h2load (1 thread) ${CLIENTS} × ${STREAMS}, ${fmt(REQUESTS)} calls per run after ${fmt(WARMUP_REQUESTS)} of warm-up, then ${fmt(LATENCY_REQUESTS)} at one outstanding; ${ROUNDS} round(s), medians`,
  );
  console.log(`machine: ${cpus().length} CPUs, load average ${loadAverage()} at the start`);
  const direct = await startRole("grpc-direct");
  const directPort = Number(direct.ready.port);
  const paths: Path[] = [{ name: "direct", port: directPort }];
  const stacks: Array<[string, string | undefined]> = [["serve + sidecar", undefined]];
  if (baseline) {
    if (!existsSync(baseline)) throw new Error(`BENCH_BASELINE=${baseline}: no such file (a CLI bundle, cli/dist/grpcrouter.js of another checkout)`);
    stacks.push([`serve + sidecar (${path.relative(repoRoot, baseline)})`, baseline]);
  }
  for (const [name, bundle] of stacks) {
    const id = `cost-${paths.length}`;
    const start = (args: string[], ready: RegExp) => startCli(args, ready, bundle ? { script: bundle } : { bundled: true });
    const serve = await start(["serve", ...echoModule, "--port", "0", "--no-dashboard", "--no-watch"], /router listening on (\S+):(\d+)/);
    const sidecar = await start(
      ["bridge", ...echoModule, "--target", `127.0.0.1:${directPort}`, "--router", `${serve.match[1]}:${serve.match[2]}`, "--id", id],
      new RegExp(`${id} registered`),
    );
    await checkUnary(`127.0.0.1:${serve.match[2]}`, SAY);
    paths.push({ name, port: Number(serve.match[2]), serve: serve.pid, sidecar: sidecar.pid });
  }

  const rows = new Map<string, Row[]>(paths.map((p) => [p.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    // Direct first, then the stacks in alternating order.
    const stackOrder = round % 2 === 0 ? paths.slice(1) : paths.slice(1).reverse();
    for (const p of [paths[0]!, ...stackOrder]) {
      const url = `http://127.0.0.1:${p.port}${SAY}`;
      const cpu = () => [p.serve ? groupCpuMs([p.serve]) : 0, p.sidecar ? groupCpuMs([p.sidecar]) : 0, groupCpuMs([direct.pid])];
      await runH2load({ url, message: EMPTY, clients: CLIENTS, streams: STREAMS, requests: Math.max(1, WARMUP_REQUESTS), warmupOnly: true });
      const c0 = cpu();
      const h0 = childrenCpuMs();
      const t = await runH2load({ url, message: EMPTY, clients: CLIENTS, streams: STREAMS, requests: REQUESTS });
      const c1 = cpu();
      const h1 = childrenCpuMs();
      const l0 = cpu();
      const l = await runH2load({ url, message: EMPTY, clients: 1, streams: 1, requests: LATENCY_REQUESTS, latency: true });
      const l1 = cpu();
      const per = (a: number[], b: number[], i: number, n: number) => ((b[i]! - a[i]!) * 1000) / Math.max(1, n);
      const row: Row = {
        rps: t.requestsPerSecond,
        p50: l.p50Us ?? NaN,
        serve: per(c0, c1, 0, t.succeeded),
        sidecar: per(c0, c1, 1, t.succeeded),
        target: per(c0, c1, 2, t.succeeded),
        h2load: ((h1 - h0) * 1000) / Math.max(1, t.succeeded),
        serve1: per(l0, l1, 0, l.succeeded),
        sidecar1: per(l0, l1, 1, l.succeeded),
        target1: per(l0, l1, 2, l.succeeded),
      };
      rows.get(p.name)!.push(row);
      const failed = t.failed + t.errored + l.failed + l.errored;
      if (failed > 0) {
        console.log(`  ${p.name}: FAILED, ${failed} calls failed in round ${round + 1}`);
        process.exitCode = 1;
      }
      console.log(
        `  round ${round + 1} ${p.name}: ${fmt(row.rps)} req/s, CPU µs/call serve ${fmt(row.serve)} sidecar ${fmt(row.sidecar)} target ${fmt(row.target)} h2load ${fmt(row.h2load, 1)}; p50 ${fmt(row.p50)} µs`,
      );
    }
  }

  const med = (name: string, k: keyof Row) => median(rows.get(name)!.map((r) => r[k]));
  console.log(`\nload average ${loadAverage()} at the end\n`);
  console.log("| path | req/s | p50 µs | CPU µs/call: serve | sidecar | target | h2load | at 1 outstanding: serve | sidecar | target |");
  console.log("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
  for (const p of paths) {
    const stack = p.serve !== undefined;
    const c = (k: keyof Row, d = 0) => (stack || k === "target" || k === "target1" || k === "h2load" ? fmt(med(p.name, k), d) : "");
    console.log(
      `| ${p.name} | ${fmt(med(p.name, "rps"))} | ${fmt(med(p.name, "p50"))} | ${c("serve")} | ${c("sidecar")} | ${c("target")} | ${c("h2load", 1)} | ${c("serve1")} | ${c("sidecar1")} | ${c("target1")} |`,
    );
  }

  // The bound, from this run's CPU per call (what an otherwise idle machine would allow; the
  // req/s measured on a shared one are these shrunk by the other load).
  const cores = cpus().length;
  const name = paths[1]!.name;
  const [D, Hd] = [med("direct", "target"), med("direct", "h2load")];
  const [R, S, T, H] = [med(name, "serve"), med(name, "sidecar"), med(name, "target"), med(name, "h2load")];
  const directIdeal = Math.min(1e6 / D, (cores * 1e6) / (D + Hd));
  const pathIdeal = Math.min((cores * 1e6) / (R + S + T + H), 1e6 / Math.max(R, S, T));
  const goal = 0.6 * directIdeal;
  console.log(
    `\nbound: direct ≤ ${fmt(directIdeal)} calls/s (one process at ${fmt(D)} µs a call); ${name} ≤ ${fmt(pathIdeal)} calls/s` +
      ` (${cores} cores for ${fmt(R + S + T + H)} µs a call: serve ${fmt(R)} + sidecar ${fmt(S)} + target ${fmt(T)} + h2load ${fmt(H, 1)})` +
      ` = ${fmt(pathIdeal / directIdeal, 2)} × direct. 0.6 × direct (${fmt(goal)} calls/s) needs serve + sidecar ≤ ${fmt((cores * 1e6) / goal - T - H)} µs a call` +
      ` and each ≤ ${fmt(1e6 / goal)} µs (one core)`,
  );
  console.log(`added p50 at one outstanding: ${fmt(med(name, "p50") - med("direct", "p50"))} µs (target ≤ 250 µs)`);
}

try {
  await main();
} finally {
  await stopAll();
}
