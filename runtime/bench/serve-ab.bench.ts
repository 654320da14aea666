// `BENCH_BASELINE=<checkout> node --import tsx runtime/bench/serve-ab.bench.ts`: the CPU that
// `grpcrouter serve` spends per call, this tree's against another checkout's (both built with
// `tsc -b`), in the same run, rounds interleaved. Each serve has a sidecar of this tree
// (`bridge --target`) in front of one bare grpc-js server; h2load drives each path in turn,
// and the figure is serve's own CPU time (/proc) per answered call, with and without the
// dashboard (which brings the Prometheus metrics). The machine may be shared: the CPU per call
// moves less with other load than the rates do; the median of the rounds is printed.
// BENCH_ROUNDS (5) rounds of BENCH_SECONDS (3) per path, after BENCH_WARMUP (2) seconds of
// warm-up each. BENCH_PROFILE=<dir>: each serve writes a V8 CPU profile there
// (serve-<tree>[-dashboard]/).
import path from "node:path";
import { checkUnary } from "./check.js";
import { echoModule, env, fmt, median, SAY } from "./common.js";
import { runH2load } from "./h2load.js";
import { groupCpuMs, repoRoot, startCli, startRole, stopAll } from "./processes.js";

const ROUNDS = Math.max(1, env("BENCH_ROUNDS", 5));
const SECONDS = env("BENCH_SECONDS", 3);
const WARMUP = env("BENCH_WARMUP", 2);
const baseline = process.env.BENCH_BASELINE ? path.resolve(process.env.BENCH_BASELINE) : undefined;
if (!baseline) throw new Error("BENCH_BASELINE=<a checkout built with tsc -b> is required");

const profileDir = process.env.BENCH_PROFILE ? path.resolve(process.env.BENCH_PROFILE) : undefined;

/** `grpcrouter <args>` of the checkout at `root` (its compiled CLI, run from there); `profile` names its CPU profile's folder. */
const cli = (root: string, args: string[], ready: RegExp, profile?: string) =>
  startCli(args, ready, {
    nodeFlags: profileDir && profile ? ["--cpu-prof", `--cpu-prof-dir=${path.join(profileDir, profile)}`] : [],
    script: path.join(root, "cli/dist/src/main.js"),
    cwd: root,
  });

interface Path {
  name: string;
  port: number;
  serve: number;
  sidecar: number;
  runs: Array<{ serveUs: number; sidecarUs: number; rps: number }>;
}

const direct = await startRole("grpc-direct");
const directPort = Number(direct.ready.port);
const paths: Path[] = [];
try {
  for (const dashboard of [false, true]) {
    for (const [name, root] of [
      ["baseline", baseline],
      ["this tree", repoRoot],
    ] as const) {
      const serve = await cli(
        root,
        ["serve", ...echoModule, "--port", "0", "--no-watch", ...(dashboard ? ["--admin-port", "0"] : ["--no-dashboard"])],
        /router listening on (\S+):(\d+)/,
        `serve-${name.replace(" ", "-")}${dashboard ? "-dashboard" : ""}`,
      );
      const address = `${serve.match[1]}:${serve.match[2]}`;
      const id = `ab-${paths.length}`;
      const sidecar = await cli(
        repoRoot,
        ["bridge", ...echoModule, "--target", `127.0.0.1:${directPort}`, "--router", address, "--id", id],
        new RegExp(`${id} registered`),
      );
      await checkUnary(address, SAY);
      paths.push({
        name: `${name}${dashboard ? ", dashboard + metrics" : ""}`,
        port: Number(serve.match[2]),
        serve: serve.pid,
        sidecar: sidecar.pid,
        runs: [],
      });
    }
  }
  const message = new Uint8Array(0);
  for (const p of paths) await runH2load({ url: `http://127.0.0.1:${p.port}${SAY}`, message, clients: 4, streams: 32, seconds: WARMUP, warmupOnly: true });
  for (let r = 0; r < ROUNDS; r++) {
    for (const p of paths) {
      const [s0, c0] = [groupCpuMs([p.serve]), groupCpuMs([p.sidecar])];
      const res = await runH2load({ url: `http://127.0.0.1:${p.port}${SAY}`, message, clients: 4, streams: 32, seconds: SECONDS });
      const [s1, c1] = [groupCpuMs([p.serve]), groupCpuMs([p.sidecar])];
      const n = Math.max(1, res.succeeded);
      p.runs.push({ serveUs: ((s1 - s0) * 1000) / n, sidecarUs: ((c1 - c0) * 1000) / n, rps: res.requestsPerSecond });
    }
  }
  console.log(`serve's CPU per call, median of ${ROUNDS} interleaved rounds (h2load 4 × 32, ${SECONDS} s each)`);
  console.log("| serve | serve CPU µs/call | sidecar CPU µs/call | req/s |");
  console.log("|---|--:|--:|--:|");
  for (const p of paths) {
    const m = (k: "serveUs" | "sidecarUs" | "rps") => median(p.runs.map((r) => r[k]));
    console.log(`| ${p.name} | ${fmt(m("serveUs"), 1)} | ${fmt(m("sidecarUs"), 1)} | ${fmt(m("rps"))} |`);
  }
} finally {
  await stopAll();
}
