// `npm run bench -- grpcjs`: the Echo example dialled directly (connect-node over HTTP/2)
// and through the router (router process + bridged instance process), in one run, with the
// same grpc-js load generator (its own process). Prints throughput, p50/p99 and the ratios.
// Nothing is asserted: the numbers depend on the machine.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { LoadResult, LoadSpec } from "./loadgen.js";

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const seconds = Number(process.env.BENCH_SECONDS ?? 3);
// Direct and routed runs alternate, ROUNDS times each; the medians are printed (the machine
// is shared and noisy: one run proves little).
const rounds = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));
// BENCH_BASELINE=<another checkout>: its router and instance run too ("before"), so a change
// is measured against the old code in the same run. BENCH_PROFILE=<dir>: the router and
// instance processes write V8 CPU profiles there. BENCH_BALANCER=0 skips the balancer column.
const baseline = process.env.BENCH_BASELINE;
const profileDir = process.env.BENCH_PROFILE;
const children: ChildProcess[] = [];

function start(args: string[], servers = here("./echo-servers.mjs")): Promise<{ port?: number; ready?: boolean; pid: number }> {
  // One directory per process kind: tsx's loader thread writes a profile of its own there too.
  const side = baseline && servers !== here("./echo-servers.mjs") ? "before" : "after";
  const prof = profileDir && args[0] !== "direct" ? ["--cpu-prof", "--cpu-prof-dir", `${profileDir}/${args[0]}-${side}`] : [];
  // BENCH_NODE_FLAGS: extra node flags for the router and instance under test (not the
  // baseline's), e.g. "--max-semi-space-size=32" to see what a GC setting is worth.
  const flags = side === "after" && args[0] !== "direct" ? (process.env.BENCH_NODE_FLAGS ?? "").split(" ").filter(Boolean) : [];
  const child = spawn(process.execPath, [...prof, ...flags, "--conditions=@grpcrouter/source", "--import", "tsx", servers, ...args], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`echo-servers ${args.join(" ")} exited with ${code}`)));
    createInterface({ input: child.stdout! }).once("line", (line) => resolve({ ...JSON.parse(line), pid: child.pid! }));
  });
}

/**
 * CPU time (user + system, ms) the given processes have used so far, from /proc; NaN where
 * there is no /proc. CPU per call is much steadier than throughput on a shared machine.
 */
function cpuMs(pids: number[]): number {
  let ticks = 0;
  try {
    for (const pid of pids) {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
    }
  } catch {
    return NaN;
  }
  return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
}

function load(spec: LoadSpec): Promise<LoadResult> {
  const child = spawn(process.execPath, ["--conditions=@grpcrouter/source", "--import", "tsx", here("./loadgen.ts"), JSON.stringify(spec)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d));
  return new Promise((resolve, reject) =>
    child.once("exit", (code) => (code === 0 ? resolve(JSON.parse(out) as LoadResult) : reject(new Error(`loadgen exited with ${code}`)))),
  );
}

// SayRequest{text:"hello"} and CountRequest{text:"x", count:100}, encoded by hand.
const say = Buffer.from([0x0a, 5, ...Buffer.from("hello")]).toString("base64");
const count = Buffer.from([0x0a, 1, 0x78, 0x10, 100]).toString("base64");

const scenarios: Array<{ name: string; spec: Omit<LoadSpec, "target"> }> = [
  { name: "unary, 1 outstanding", spec: { method: "/demo.v1.Echo/Say", kind: "unary", request: say, concurrency: 1, seconds, warmupSeconds: 1 } },
  { name: "unary, 128 outstanding", spec: { method: "/demo.v1.Echo/Say", kind: "unary", request: say, concurrency: 128, seconds, warmupSeconds: 1 } },
  {
    name: "server streaming ×100, 8 outstanding",
    spec: { method: "/demo.v1.Echo/Count", kind: "server_streaming", request: count, concurrency: 8, seconds, warmupSeconds: 1 },
  },
];

const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
/** The medians of several runs of one target (each field on its own). */
function medianOf(runs: LoadResult[]): LoadResult {
  const m = (f: (r: LoadResult) => number) => median(runs.map(f));
  const errors = runs.reduce((n, r) => n + r.errors, 0);
  const firstError = runs.find((r) => r.firstError)?.firstError;
  return {
    calls: m((r) => r.calls),
    messages: m((r) => r.messages),
    errors,
    seconds: m((r) => r.seconds),
    callsPerSecond: m((r) => r.callsPerSecond),
    messagesPerSecond: m((r) => r.messagesPerSecond),
    p50Ms: m((r) => r.p50Ms),
    p99Ms: m((r) => r.p99Ms),
    allCalls: m((r) => r.allCalls),
    allMessages: m((r) => r.allMessages),
    ...(firstError ? { firstError } : {}),
  };
}

try {
  // Each target: its label, its port, and the server processes whose CPU it costs.
  const targets: Array<[string, number, number[]]> = [];
  const direct = await start(["direct"]);
  targets.push(["direct", direct.port!, [direct.pid]]);
  if (baseline) {
    const servers = `${baseline}/runtime/bench/echo-servers.mjs`;
    const before = await start(["router"], servers);
    const beforeInstance = await start(["instance", `127.0.0.1:${before.port}`], servers);
    targets.push(["before", before.port!, [before.pid, beforeInstance.pid]]);
  }
  const router = await start(["router"]);
  const instance = await start(["instance", `127.0.0.1:${router.port}`]);
  targets.push(["routed", router.port!, [router.pid, instance.pid]]);
  console.log(
    `direct: connect-node on :${direct.port}; routed: router on :${router.port} + one bridged instance${baseline ? `; before: the same from ${baseline}` : ""}; ` +
      `${seconds} s per run, ${rounds} rounds alternating, medians shown`,
  );
  // cpu µs: CPU time of the serving processes (direct: the server; routed: router +
  // instance) per call (unary) or per streamed message, warm-up included.
  console.log("scenario                               | target | calls/s   | msgs/s    | p50 ms | p99 ms | cpu µs  | errors");
  const summary: string[] = [];
  // BENCH_SCENARIOS=<text>: only the scenarios whose name contains it (e.g. "1 outstanding").
  const only = process.env.BENCH_SCENARIOS;
  for (const s of scenarios.filter((x) => !only || x.name.includes(only))) {
    const runs = new Map<string, LoadResult[]>(targets.map(([t]) => [t, []]));
    const cpu = new Map<string, number[]>(targets.map(([t]) => [t, []]));
    const unary = s.spec.kind === "unary";
    for (let i = 0; i < rounds; i++) {
      for (const [t, port, pids] of targets) {
        const c0 = cpuMs(pids);
        const r = await load({ ...s.spec, target: `127.0.0.1:${port}` });
        runs.get(t)!.push(r);
        cpu.get(t)!.push(((cpuMs(pids) - c0) * 1000) / (unary ? r.allCalls : r.allMessages));
      }
    }
    const med = new Map([...runs].map(([t, r]) => [t, medianOf(r)]));
    const cpuMed = new Map([...cpu].map(([t, c]) => [t, median(c)]));
    for (const [label, x] of med) {
      console.log(
        `${s.name.padEnd(38)} | ${label} | ${fmt(x.callsPerSecond).padStart(9)} | ${fmt(x.messagesPerSecond).padStart(9)} | ${fmt(x.p50Ms, 3).padStart(6)} | ${fmt(x.p99Ms, 3).padStart(6)} | ${fmt(cpuMed.get(label)!, 1).padStart(7)} | ${x.errors}${x.firstError ? ` (${x.firstError})` : ""}`,
      );
    }
    const d = med.get("direct")!;
    for (const [label, r] of med) {
      if (label === "direct") continue;
      const ratio = s.spec.kind === "unary" ? r.callsPerSecond / d.callsPerSecond : r.messagesPerSecond / d.messagesPerSecond;
      const line = `${label}/direct throughput ${fmt(ratio, 2)}, added p50 ${fmt(r.p50Ms - d.p50Ms, 3)} ms, serving CPU ${fmt(cpuMed.get(label)! / cpuMed.get("direct")!, 2)}× direct`;
      console.log(`${"".padEnd(38)} | ratio  | ${line}`);
      summary.push(`${s.name}: ${line}`);
    }
  }
  console.log(`\nsummary (target: routed/direct throughput >= 1.00, added p50 <= 0.100 ms)\n  ${summary.join("\n  ")}`);
  if (process.env.BENCH_BALANCER !== "0") {
    // The balancer column: the same unary load through a router per strategy, two instances
    // each, so the strategy's cost per call (pick + admission) shows against round robin.
    // The routing key is SayRequest.text (decoding the request for the hook is part of it).
    const strategies: Array<[string, unknown]> = [
      ["round_robin", "round_robin"],
      ["weighted_round_robin", "weighted_round_robin"],
      ["least_outstanding", "least_outstanding"],
      ["consistent_hash", { strategy: "consistent_hash" }],
      ["subset+round_robin", { strategy: "subset", selector: { zone: "a" }, inner: "round_robin" }],
    ];
    // Round robin runs first and last: on a shared machine the better of the two is the baseline.
    strategies.push(["round_robin (again)", "round_robin"]);
    const unary = scenarios[1]!;
    const results: Array<[string, LoadResult]> = [];
    for (const [name, config] of strategies) {
      const r = await start(["router", JSON.stringify(config)]);
      await start(["instance", `127.0.0.1:${r.port}`, "b1"]);
      await start(["instance", `127.0.0.1:${r.port}`, "b2"]);
      results.push([name, await load({ ...unary.spec, target: `127.0.0.1:${r.port}` })]);
      for (const c of children.splice(baseline ? 5 : 3)) c.kill(); // this strategy's router and instances
    }
    const base = Math.max(...results.filter(([n]) => n.startsWith("round_robin")).map(([, x]) => x.callsPerSecond));
    console.log(`\nbalancer (${unary.name}, 2 instances) | calls/s   | p50 ms | p99 ms | vs round robin`);
    for (const [name, x] of results) {
      console.log(
        `${name.padEnd(35)} | ${fmt(x.callsPerSecond).padStart(9)} | ${fmt(x.p50Ms, 3).padStart(6)} | ${fmt(x.p99Ms, 3).padStart(6)} | ${fmt(x.callsPerSecond / base, 2)}×${x.errors ? ` errors ${x.errors} (${x.firstError})` : ""}`,
      );
    }
  }
} finally {
  for (const c of children) c.kill();
}
