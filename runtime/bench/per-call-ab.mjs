// CPU and memory allocated per call of the router and the raw bridge, for two (or more) builds
// of the runtime side by side: on a shared machine req/s swings with the other load, while
// CPU µs and bytes allocated per call of each process move little, so a change to the hot
// path is judged by them, builds interleaved round by round in one run.
//
//   npm run build   (or npx tsc -b), then copy runtime/dist somewhere inside the repository
//   (node_modules/.ab/before/dist, say: the compiled files import their dependencies from
//   the repository's node_modules), change the code, build again, and
//
//   node runtime/bench/per-call-ab.mjs before=node_modules/.ab/before/dist after=runtime/dist
//
// Each name=dist gets its own router process and raw-bridge process (the Echo tunnel,
// answering an empty message as dataplane-servers.mjs's raw-bridge does). Per round and
// build: h2load sends CALLS calls (4 connections × 32 streams; with AB_LATENCY=1 one at a
// time) and each process reports its CPU time (process.cpuUsage) and the bytes it allocated
// (heap growth plus what every GC freed meanwhile, from v8.GCProfiler) over those calls;
// then a latency run of LATENCY_CALLS calls one at a time gives p50/p99. The table shows the
// medians of the rounds. A name=dist=--flag:value,… passes node flags to both processes.
//
//   AB_CALLS (30000), AB_LATENCY_CALLS (3000), AB_ROUNDS (5), AB_WARMUP (20000 calls),
//   AB_LATENCY=1 (the measured calls one at a time too), AB_PROFILE=<dir> (--cpu-prof of each process)
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath, pathToFileURL } from "node:url";
import v8 from "node:v8";

const here = fileURLToPath(import.meta.url);
const repo = path.resolve(path.dirname(here), "../..");
const num = (name, fallback) => Number(process.env[name] ?? fallback);
const say = (o) => console.log(JSON.stringify(o));

if (process.argv[2] === "--role") await role(process.argv[3], process.argv[4], process.argv[5]);
else await compare(process.argv.slice(2));

/** A router or raw-bridge process of one build; "start"/"stop" on stdin measure an interval. */
async function role(dist, which, router) {
  const runtime = await import(pathToFileURL(path.resolve(repo, dist, "src/index.js")).href);
  const { Echo } = await import(pathToFileURL(path.join(repo, "examples/echo/gen/demo/v1/echo_pb.ts")).href);
  const tunnel = runtime.defineTunnel(Echo, "demo.v1.EchoRouter", { Say: 16, Count: 17, Collect: 18, Chat: 19 });
  const quiet = () => {};
  process.on("SIGTERM", () => process.exit(0)); // so that --cpu-prof writes its profile
  if (which === "router") {
    const r = runtime.createRouter({ logger: quiet, services: [{ tunnel }] });
    say({ port: (await r.listen("127.0.0.1:0")).port });
  } else {
    const empty = Buffer.alloc(0);
    const bridge = runtime.createRawBridge(
      tunnel,
      async (call) => {
        for await (const _ of call.requests); // a real server reads its request
        await call.send(empty);
        return { code: 0 };
      },
      { router, instanceId: "per-call-ab", logger: quiet },
    );
    await bridge.start();
    say({ ready: true });
  }
  let profiler;
  let used = 0;
  let cpu;
  createInterface({ input: process.stdin }).on("line", (line) => {
    if (line === "start") {
      profiler = new v8.GCProfiler();
      profiler.start();
      used = v8.getHeapStatistics().used_heap_size;
      cpu = process.cpuUsage();
      say({ started: true });
    } else if (line === "stop") {
      const spent = process.cpuUsage(cpu);
      const usedNow = v8.getHeapStatistics().used_heap_size;
      let freed = 0;
      for (const gc of profiler.stop().statistics) freed += gc.beforeGC.heapStatistics.usedHeapSize - gc.afterGC.heapStatistics.usedHeapSize;
      say({ cpuUs: spent.user + spent.system, allocated: usedNow - used + freed });
    }
  });
}

async function compare(args) {
  if (args.length === 0) {
    console.error("usage: per-call-ab.mjs name=<runtime dist dir>[=--flag:value,…] …  (see the head of this file)");
    process.exit(2);
  }
  const calls = num("AB_CALLS", 30000);
  const latencyCalls = num("AB_LATENCY_CALLS", 3000);
  const rounds = num("AB_ROUNDS", 5);
  const dir = mkdtempSync(path.join(tmpdir(), "per-call-ab-"));
  const body = path.join(dir, "body");
  writeFileSync(body, Buffer.from([0, 0, 0, 0, 0])); // an empty gRPC message
  const children = [];
  process.on("exit", () => {
    for (const c of children) c.kill();
    rmSync(dir, { recursive: true, force: true });
  });
  process.on("SIGINT", () => process.exit(1));

  const start = (name, dist, which, flags, extra) => {
    const profile = process.env.AB_PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${path.resolve(process.env.AB_PROFILE, `${name}-${which}`)}`] : [];
    const child = spawn(process.execPath, [...flags, ...profile, "--import", "tsx", here, "--role", dist, which, ...extra], {
      cwd: repo,
      stdio: ["pipe", "pipe", "inherit"],
    });
    children.push(child);
    const lines = [];
    const waiting = [];
    createInterface({ input: child.stdout }).on("line", (l) => {
      const w = waiting.shift();
      if (w) w(JSON.parse(l));
      else lines.push(JSON.parse(l));
    });
    const next = () =>
      new Promise((resolve, reject) => {
        if (lines.length > 0) return resolve(lines.shift());
        const timer = setTimeout(() => reject(new Error(`${name} ${which}: no answer within 60 s`)), 60_000);
        waiting.push((v) => {
          clearTimeout(timer);
          resolve(v);
        });
      });
    return {
      next,
      ask: (command) => {
        child.stdin.write(`${command}\n`);
        return next();
      },
    };
  };

  const builds = [];
  for (const arg of args) {
    const [name, dist, flagList] = arg.split("=");
    const flags = flagList ? flagList.split(",").map((f) => f.replace(":", "=")) : [];
    const router = start(name, dist, "router", flags, []);
    const { port } = await router.next();
    const bridge = start(name, dist, "bridge", flags, [`127.0.0.1:${port}`]);
    await bridge.next();
    builds.push({ name, port, router, bridge, rounds: [] });
  }

  const h2load = (port, n, streams, log) => {
    const c = streams === 1 ? 1 : 4;
    const a = ["-t", "1", "-c", String(c), "-m", String(streams), "-n", String(n), "-H", "content-type: application/grpc", "-H", "te: trailers", "-d", body];
    if (log) a.push("--log-file", log);
    const out = execFileSync("h2load", [...a, `http://127.0.0.1:${port}/demo.v1.Echo/Say`], { encoding: "utf8" });
    const ok = Number(/(\d+) succeeded/.exec(out)?.[1] ?? 0);
    if (ok !== n) throw new Error(`h2load: ${ok} of ${n} calls succeeded\n${out}`);
    return Number(/([\d.]+) req\/s/.exec(out)?.[1] ?? 0);
  };
  const percentiles = (log) => {
    const us = readFileSync(log, "utf8")
      .split("\n")
      .map((l) => l.split("\t"))
      .filter((f) => f[1]?.startsWith("2"))
      .map((f) => Number(f[2]))
      .sort((a, b) => a - b);
    return { p50: us[Math.floor(us.length * 0.5)], p99: us[Math.floor(us.length * 0.99)] };
  };

  for (const b of builds) {
    h2load(b.port, num("AB_WARMUP", 20000), 32);
    h2load(b.port, 1000, 1);
  }
  for (let r = 0; r < rounds; r++) {
    for (const b of builds) {
      await b.router.ask("start");
      await b.bridge.ask("start");
      const rps = h2load(b.port, calls, process.env.AB_LATENCY === "1" ? 1 : 32);
      const router = await b.router.ask("stop");
      const bridge = await b.bridge.ask("stop");
      const log = path.join(dir, "log");
      h2load(b.port, latencyCalls, 1, log);
      b.rounds.push({
        rps,
        routerCpu: router.cpuUs / calls,
        bridgeCpu: bridge.cpuUs / calls,
        routerBytes: router.allocated / calls,
        bridgeBytes: bridge.allocated / calls,
        ...percentiles(log),
      });
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const columns = [
    ["req/s", "rps", 0],
    ["router µs", "routerCpu", 1],
    ["bridge µs", "bridgeCpu", 1],
    ["router B", "routerBytes", 0],
    ["bridge B", "bridgeBytes", 0],
    ["p50 µs", "p50", 0],
    ["p99 µs", "p99", 0],
  ];
  console.log(
    `per call, medians of ${rounds} rounds of ${calls} calls (${process.env.AB_LATENCY === "1" ? "one at a time" : "4 × 32 outstanding"}); p50/p99 of ${latencyCalls} calls one at a time`,
  );
  console.log(`| build | ${columns.map((c) => c[0]).join(" | ")} |`);
  console.log(`|---|${columns.map(() => "--:").join("|")}|`);
  for (const b of builds) console.log(`| ${b.name} | ${columns.map(([, key, digits]) => median(b.rounds.map((x) => x[key])).toFixed(digits)).join(" | ")} |`);
  process.exit(0);
}
