// `npm run bench`: every benchmark, one after the other (never in parallel: the machine is
// small and shared). Each prints its own baseline, measured in the same run, and ratios
// against it; nothing here asserts a time.
//
//   npm run bench                      all of them
//   npm run bench -- balancer          the benchmark named "balancer" (a whole name, so that
//                                      `sidecar` selects the serve-sidecar path, not sidecar-cost)
//   npm run bench -- haproxy router    a word that names no benchmark selects the data-plane
//                                      paths containing it (plus the baselines they need)
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const benches = [
  // h2load against direct grpc-js, HAProxy, nginx, the router paths, 10,000 instances.
  ["dataplane", "runtime/bench/dataplane.bench.ts"],
  // Issue 12: calls/s through three routers vs one, registrations/s of 1,000 instances joining three.
  ["routers", "runtime/bench/routers.bench.ts"],
  // Issue 9: serve + sidecar's CPU per call, process by process, and the bound it sets;
  // BENCH_BASELINE=<another build's cli/dist/grpcrouter.js> for an A/B in the same run.
  ["sidecar-cost", "runtime/bench/sidecar.bench.ts"],
  // The Echo example end to end under a grpc-js load generator (it saturates before the
  // router does: see dataplane), balancer strategies through a real router, and
  // BENCH_BASELINE=<another checkout> to compare with older code in the same run.
  ["grpcjs", "runtime/bench/router.bench.ts"],
  ["balancer", "runtime/bench/balancer.bench.ts"],
  // The live statistics' cost per call and the dashboard's frame rate under load (chromium).
  ["dashboard", "runtime/bench/dashboard.bench.ts"],
  // The admin hub, metrics and tracing: CPU per call as `serve` runs them (BENCH_BASELINE=<checkout> A/B).
  ["hub", "runtime/bench/hub.bench.ts"],
  ["web", "runtime/bench/web.bench.ts"],
  ["generate", "generator/bench/generate.bench.ts"],
  ["editor", "server/bench/editor.bench.ts"],
];
const filters = process.argv.slice(2);
const named = filters.filter((f) => benches.some(([name]) => name === f));
const pathFilters = filters.filter((f) => !named.includes(f));

// dataplane, routers and sidecar-cost start their processes through runtime/bench/processes.ts:
// they need the Debian packages they drive (h2load, haproxy, nginx, tinyproxy), and the
// compiled runtime and CLI those processes run, built first so the bench never measures stale
// output.
const startsProcesses = filters.length === 0 || pathFilters.length > 0 || named.some((f) => f === "dataplane" || f === "routers" || f === "sidecar-cost");
if (startsProcesses) {
  const deps = spawnSync("bash", [path.join(root, "scripts/ensure-bench-deps.sh")], { stdio: "inherit" });
  if (deps.status !== 0) process.exit(deps.status || 1);
}
if (startsProcesses && process.env.BENCH_RUNTIME !== "source") {
  const tsc = spawnSync(process.execPath, [path.join(root, "node_modules/typescript/bin/tsc"), "-b", "tsconfig.json"], { cwd: root, stdio: "inherit" });
  if (tsc.status !== 0) process.exit(tsc.status || 1);
}

let failed = false;
for (const [name, file] of benches) {
  let args = [];
  if (filters.length > 0 && !named.includes(name)) {
    if (name !== "dataplane" || pathFilters.length === 0) continue;
    args = pathFilters;
  }
  if (!existsSync(path.join(root, file))) continue;
  console.log(`\n== ${name} (${file})${args.length ? ` ${args.join(" ")}` : ""}`);
  const r = spawnSync(process.execPath, ["--conditions=@grpcrouter/source", "--import", "tsx", file, ...args], {
    cwd: root,
    stdio: "inherit",
  });
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
