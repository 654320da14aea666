// Summarises a V8 CPU profile (node --cpu-prof; the bench writes them with BENCH_PROFILE=dir):
// self time by function and by source file/package, as shares of the busy (non-idle) time.
//
//   node runtime/bench/cpuprofile-top.mjs <file.cpuprofile>… [rows] [skip seconds]
//
// "skip seconds" leaves out the profile's start (module loading); the busy share per second it
// prints first shows where the load began. Given several profiles (a glob over a --cpu-prof-dir
// matches one per thread: tsx's loader hooks run on a thread of their own, with a profile as
// large as the main thread's), it summarises the busiest and names the others.
import { readFileSync } from "node:fs";

const args = process.argv.slice(2);
const isNumber = (a) => /^\d+(\.\d+)?$/.test(a);
const files = args.filter((a) => !isNumber(a));
const [rowsArg, skipArg] = args.filter(isNumber);
if (files.length === 0) {
  console.error("usage: cpuprofile-top.mjs <file.cpuprofile>… [rows] [skip seconds]");
  process.exit(2);
}
const rows = Number(rowsArg ?? 25);
const idleIdsOf = (profile) => new Set(profile.nodes.filter((n) => n.callFrame.functionName === "(idle)").map((n) => n.id));
/** Sampled time not idle, µs. */
function busyUs(profile) {
  const idleIds = idleIdsOf(profile);
  let us = 0;
  profile.samples.forEach((id, i) => {
    if (!idleIds.has(id)) us += profile.timeDeltas[i] ?? 0;
  });
  return us;
}
const loaded = files.map((file) => {
  const profile = JSON.parse(readFileSync(file, "utf8"));
  return { file, profile, busy: busyUs(profile) };
});
loaded.sort((a, b) => b.busy - a.busy);
const { file, profile } = loaded[0];
if (loaded.length > 1) {
  console.log(`${loaded.length} profiles: the busiest is summarised; the others:`);
  for (const o of loaded.slice(1)) console.log(`  ${o.file}: ${(o.busy / 1e6).toFixed(2)} s busy`);
}
const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
// Self time per node: the samples' time deltas, attributed to the sampled node.
const self = new Map();
const skipUs = Number(skipArg ?? 0) * 1e6;
const idleIds = idleIdsOf(profile);
const perSecond = [];
let t = 0;
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0;
  t += dt;
  const s = Math.floor(t / 1e6);
  perSecond[s] ??= 0;
  if (!idleIds.has(id)) perSecond[s] += dt;
  if (t >= skipUs) self.set(id, (self.get(id) ?? 0) + dt);
});
console.log(`busy % per second: ${[...perSecond].map((us) => Math.round((us ?? 0) / 1e4)).join(" ")}`);

/** Where a function lives: an npm package, a file of ours, or V8/Node itself. */
function place(url) {
  if (!url) return "(native)";
  const pkg = url.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
  if (pkg) return pkg[1];
  if (url.startsWith("node:")) return url;
  const ours = url.match(/\/(runtime|cli|generator|examples)\/(.*)$/);
  return ours ? `${ours[1]}/${ours[2]}` : url;
}

let idle = 0;
let total = 0;
const byFunction = new Map();
const byPlace = new Map();
for (const [id, us] of self) {
  const { callFrame: f } = nodes.get(id);
  total += us;
  if (f.functionName === "(idle)" || f.functionName === "(program)") {
    idle += f.functionName === "(idle)" ? us : 0;
    if (f.functionName === "(idle)") continue;
  }
  const where = place(f.url);
  const key = `${f.functionName || "(anonymous)"}  ${where}${f.url ? `:${f.lineNumber + 1}` : ""}`;
  byFunction.set(key, (byFunction.get(key) ?? 0) + us);
  const p = f.functionName === "(garbage collector)" || f.functionName === "(program)" ? f.functionName : where;
  byPlace.set(p, (byPlace.get(p) ?? 0) + us);
}
const busy = total - idle;
const pct = (us) => `${((100 * us) / busy).toFixed(1).padStart(5)} %`;
console.log(`${file}: ${(busy / 1e6).toFixed(2)} s busy of ${(total / 1e6).toFixed(2)} s sampled`);
console.log("\nself time by file or package");
for (const [k, us] of [...byPlace].sort((a, b) => b[1] - a[1]).slice(0, rows)) console.log(`  ${pct(us)}  ${k}`);
console.log("\nself time by function");
for (const [k, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, rows)) console.log(`  ${pct(us)}  ${k}`);
