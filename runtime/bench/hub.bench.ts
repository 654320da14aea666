// `npm run bench -- hub`: what the admin hub costs the router per call, as `grpcrouter serve`
// runs it: history on (200 calls, their messages and bodies kept, a schema resolver given),
// the metrics and tracing (no OpenTelemetry SDK) listening, nobody watching. Each call is
// what the router's observer publishes for a unary call: started (with metadata), request,
// response headers, response, ended (with trailers). Last, the same with a watcher that reads
// every event with its body, as an open dashboard does.
//
// It measures the compiled runtime (runtime/dist, built here with `tsc -b` first), as users run
// it: tsx's source transform adds a `__name` call to every closure, a cost the build has not.
// BENCH_BASELINE=<another checkout's root, its runtime built with tsc> runs the same calls
// through that checkout's hub in the same process, rounds interleaved, and prints the ratio.
// Nothing is asserted: it prints ns per call and ratios.
import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { create, toBinary } from "@bufbuild/protobuf";
import { SnapshotSchema, WatchRequestSchema } from "../src/gen/grpcrouter/v1/admin_pb.js";
import { env, median } from "./common.js";

const CALLS = env("BENCH_CALLS", 100_000);
const ROUNDS = env("BENCH_ROUNDS", 7);

type AdminModule = typeof import("../src/admin/index.js");
type MetricsModule = typeof import("../src/metrics/index.js");
type TracingModule = typeof import("../src/tracing/index.js");
type ObserverModule = typeof import("../src/tunnel/router/router-observer.js");

interface Tree {
  name: string;
  admin: AdminModule;
  metrics: MetricsModule;
  tracing: TracingModule;
  observer: ObserverModule;
}

async function load(name: string, root: string): Promise<Tree> {
  const mod = (p: string) => import(pathToFileURL(path.join(root, "runtime/dist/src", p)).href);
  return {
    name,
    admin: await mod("admin/index.js"),
    metrics: await mod("metrics/index.js"),
    tracing: await mod("tracing/index.js"),
    // A baseline checkout from before tunnel/router/ has it one folder up.
    observer: await mod("tunnel/router/router-observer.js").catch(() => mod("tunnel/router-observer.js")),
  };
}

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
const tsc = spawnSync(process.execPath, [path.join(repoRoot, "node_modules/typescript/bin/tsc"), "-b", path.join(repoRoot, "runtime")], { stdio: "inherit" });
if (tsc.status !== 0) process.exit(tsc.status || 1);
const trees = [await load("this tree", repoRoot)];
if (process.env.BENCH_BASELINE) trees.unshift(await load("baseline", path.resolve(process.env.BENCH_BASELINE)));

const METHOD = { path: "/demo.v1.Echo/Say", kind: "unary" as const };
// Any real schemas do (the admin API's own here), with messages that decode.
const describe = () => ({ input: WatchRequestSchema, output: SnapshotSchema });
// As the router has them: views into the larger chunks read from the socket.
const chunk = Buffer.alloc(16 * 1024);
function viewOf(bytes: Uint8Array, at: number): Uint8Array {
  chunk.set(bytes, at);
  return chunk.subarray(at, at + bytes.byteLength);
}
const request = viewOf(toBinary(WatchRequestSchema, create(WatchRequestSchema, { services: ["demo.v1.Echo"] })), 100);
const response = viewOf(toBinary(SnapshotSchema, create(SnapshotSchema, { routerId: "r1", routerAddress: "127.0.0.1:9090" })), 200);

interface Setup {
  label: string;
  /** Publishes `n` calls; returns a function that releases what the setup made. */
  make(tree: Tree): { run(n: number): void; close(): void };
}

function serveLike(listeners: boolean, watching = false): Setup["make"] {
  return (tree) => {
    const hub = new tree.admin.AdminHub({ describe });
    const metrics = listeners ? tree.metrics.createRouterMetrics({ hub }) : undefined;
    const tracing = listeners ? tree.tracing.createRouterTracing({ hub }) : undefined;
    // As a dashboard tab reads: every event, bodies decoded.
    const watcher = watching ? hub.watch({ includeBodies: true, queueLimit: 1_000_000 }) : undefined;
    hub.setServices([{ name: "demo.v1.Echo", methods: ["Say"] }]);
    const ids = ["a", "b", "c"];
    for (const id of ids) hub.publish({ type: "instanceRegistered", instance: { id, service: "demo.v1.Echo" } });
    const observer = new tree.observer.HubCallObserver(hub);
    const route = { policy: () => "round robin" };
    let next = 1;
    return {
      run(n) {
        for (let i = 0; i < n; i++) {
          const metadata = new grpc.Metadata();
          metadata.set("user-agent", "h2load nghttp2/1.52.0");
          metadata.set("x-request-id", "3f1c2a");
          const call = { hubId: next++, method: METHOD, peer: "127.0.0.1:50000", metadata, routingKey: undefined, route } as never;
          observer.started(call, ids[i % 3], "round robin: next in turn", 0);
          observer.request(call, request);
          observer.headers(call, new grpc.Metadata());
          observer.response(call, response);
          observer.ended(call, 0, "", new grpc.Metadata());
          if (watcher) while (watcher.take()) {}
        }
      },
      close() {
        watcher?.close();
        metrics?.close();
        tracing?.close();
        hub.close();
      },
    };
  };
}

const setups: Setup[] = [
  { label: "serve's hub, metrics and tracing (nobody watching)", make: serveLike(true) },
  { label: "the hub alone (serve's history settings)", make: serveLike(false) },
  { label: "the same with a dashboard tab watching (every event, bodies decoded)", make: serveLike(true, true) },
];

console.log(`CPU per call: median of ${ROUNDS} rounds of ${CALLS.toLocaleString("en-US")} calls, trees interleaved`);
for (const setup of setups) {
  const made = trees.map((t) => setup.make(t));
  for (const m of made) m.run(Math.min(CALLS, 20_000)); // warm up
  const ns = trees.map(() => [] as number[]);
  for (let r = 0; r < ROUNDS; r++) {
    made.forEach((m, i) => {
      // CPU time, not wall time: the machine may be shared, and a process waiting for a core
      // is not doing the hub's work.
      const t0 = process.cpuUsage();
      m.run(CALLS);
      const used = process.cpuUsage(t0);
      ns[i]!.push(((used.user + used.system) * 1e3) / CALLS);
    });
  }
  for (const m of made) m.close();
  const medians = ns.map(median);
  console.log(`  ${setup.label}`);
  trees.forEach((t, i) => {
    const ratio = trees.length > 1 ? `   ${(medians[i]! / medians[0]!).toFixed(2)} × baseline` : "";
    console.log(`    ${t.name.padEnd(10)} ${medians[i]!.toFixed(0).padStart(6)} ns${ratio}`);
  });
}
