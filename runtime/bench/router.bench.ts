// `npm run bench -- router`: the Echo example dialled directly (connect-node over HTTP/2)
// and through the router (router process + bridged instance process), in one run, with the
// same grpc-js load generator (its own process). Prints throughput, p50/p99 and the ratios.
// Nothing is asserted: the numbers depend on the machine.
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { LoadResult, LoadSpec } from "./loadgen.js";

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const seconds = Number(process.env.BENCH_SECONDS ?? 3);
const children: ChildProcess[] = [];

function start(args: string[]): Promise<{ port?: number; ready?: boolean }> {
  const child = spawn(process.execPath, ["--conditions=development", "--import", "tsx", here("./echo-servers.mjs"), ...args], { stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  return new Promise((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`echo-servers ${args.join(" ")} exited with ${code}`)));
    createInterface({ input: child.stdout! }).once("line", (line) => resolve(JSON.parse(line)));
  });
}

function load(spec: LoadSpec): Promise<LoadResult> {
  const child = spawn(process.execPath, ["--conditions=development", "--import", "tsx", here("./loadgen.ts"), JSON.stringify(spec)], { stdio: ["ignore", "pipe", "inherit"] });
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
  { name: "server streaming ×100, 8 outstanding", spec: { method: "/demo.v1.Echo/Count", kind: "server_streaming", request: count, concurrency: 8, seconds, warmupSeconds: 1 } },
];

const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

try {
  const direct = await start(["direct"]);
  const router = await start(["router"]);
  await start(["instance", `127.0.0.1:${router.port}`]);
  console.log(`direct: connect-node on :${direct.port}; routed: router on :${router.port} + one bridged instance; ${seconds} s per run`);
  console.log("scenario                               | target | calls/s   | msgs/s    | p50 ms | p99 ms | errors");
  for (const s of scenarios) {
    const d = await load({ ...s.spec, target: `127.0.0.1:${direct.port}` });
    const r = await load({ ...s.spec, target: `127.0.0.1:${router.port}` });
    for (const [label, x] of [["direct", d], ["routed", r]] as const) {
      console.log(
        `${s.name.padEnd(38)} | ${label} | ${fmt(x.callsPerSecond).padStart(9)} | ${fmt(x.messagesPerSecond).padStart(9)} | ${fmt(x.p50Ms, 3).padStart(6)} | ${fmt(x.p99Ms, 3).padStart(6)} | ${x.errors}${x.firstError ? ` (${x.firstError})` : ""}`,
      );
    }
    const ratio = s.spec.kind === "unary" ? r.callsPerSecond / d.callsPerSecond : r.messagesPerSecond / d.messagesPerSecond;
    console.log(`${"".padEnd(38)} | ratio  | routed/direct throughput ${fmt(ratio, 2)}, added p50 ${fmt(r.p50Ms - d.p50Ms, 3)} ms`);
  }

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
    for (const c of children.splice(3)) c.kill(); // this strategy's router and instances
  }
  const base = Math.max(...results.filter(([n]) => n.startsWith("round_robin")).map(([, x]) => x.callsPerSecond));
  console.log(`\nbalancer (${unary.name}, 2 instances) | calls/s   | p50 ms | p99 ms | vs round robin`);
  for (const [name, x] of results) {
    console.log(
      `${name.padEnd(35)} | ${fmt(x.callsPerSecond).padStart(9)} | ${fmt(x.p50Ms, 3).padStart(6)} | ${fmt(x.p99Ms, 3).padStart(6)} | ${fmt(x.callsPerSecond / base, 2)}×${x.errors ? ` errors ${x.errors} (${x.firstError})` : ""}`,
    );
  }
} finally {
  for (const c of children) c.kill();
}
