// The benchmarks' harnesses must not rot unnoticed: this runs them for real, briefly (the
// data plane's direct path, a few hundred requests; sidecar-cost; the serve and per-call A/B
// tools with this tree as both sides) and checks that each produced a parsed result. Nothing
// about speed is asserted; that is what `npm run bench` prints.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { grpcFrame, h2loadArgs, parseH2loadLog, parseH2loadOutput, percentile, runH2load } from "../../bench/h2load.js";
import { startRole, stop } from "../../bench/processes.js";

const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));

/** Runs a bench as `npm run bench` does (`node <args>`, tsx loaded, from the repository's root); its exit code and its output (stdout and stderr). */
async function runBench(args: string[], env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ["--conditions=@grpcrouter/source", "--import", "tsx", ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (d: Buffer) => (output += d));
  child.stderr.on("data", (d: Buffer) => (output += d));
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  return { code, output };
}

test("h2load's summary and per-request log are parsed; a missing line is an error that quotes the output", () => {
  const out = [
    "finished in 3.00s, 19456.00 req/s, 741.58KB/s",
    "requests: 38912 total, 38912 started, 38912 done, 38900 succeeded, 12 failed, 0 errored, 0 timeout",
    "status codes: 38944 2xx, 0 3xx, 0 4xx, 0 5xx",
  ].join("\n");
  assert.deepEqual(parseH2loadOutput(out), { requestsPerSecond: 19456, done: 38912, succeeded: 38900, failed: 12, errored: 0, timeout: 0, status2xx: 38944 });
  assert.throws(() => parseH2loadOutput("connect failed"), /no .*req\/s.*\n.*connect failed/);
  const log = parseH2loadLog("1796528867277183\t200\t372\n1796528867277599\t200\t273\n1796528867277884\t503\t9\n");
  assert.deepEqual([...log], [273, 372]);
  assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 50), 5);
  assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99), 10);
  assert.deepEqual([...grpcFrame(new Uint8Array([7]))], [0, 0, 0, 0, 1, 7]);
  const args = h2loadArgs({ url: "http://127.0.0.1:1/a.B/C", message: new Uint8Array(0), clients: 4, streams: 32, seconds: 1.5, warmupSeconds: 0.5 }, "/body");
  assert.deepEqual(args.slice(args.indexOf("-D"), args.indexOf("-D") + 4), ["-D", "1500ms", "--warm-up-time", "500ms"]);
});

test("the bench measures the direct path end to end and reports a parsed result", { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "grpcrouter-bench-test-"));
  try {
    const json = path.join(dir, "result.json");
    const { code, output } = await runBench(["runtime/bench/dataplane.bench.ts", "direct"], {
      BENCH_REQUESTS: "200",
      BENCH_STREAM_MESSAGES: "3",
      BENCH_JSON: json,
    });
    assert.equal(code, 0, output);
    const result = JSON.parse(readFileSync(json, "utf8")) as {
      paths: Array<{ key: string; rps?: number; p50Us?: number; p99Us?: number; failed?: number; error?: string }>;
    };
    assert.deepEqual(
      result.paths.map((p) => p.key),
      ["direct", "stream-direct"],
      output,
    );
    for (const p of result.paths) {
      assert.equal(p.error, undefined, `${p.key}: ${p.error}`);
      assert.equal(p.failed, 0, `${p.key} had failed requests`);
      assert.ok(p.rps! > 0 && p.p50Us! > 0 && p.p99Us! >= p.p50Us!, `${p.key}: ${JSON.stringify(p)}`);
    }
    assert.match(output, /\| direct: bare grpc-js server +\| +[\d,]+ \|/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a gRPC error is an HTTP 200 to h2load; the instance's count of answered calls tells them apart", { timeout: 120_000 }, async () => {
  const direct = await startRole("grpc-direct");
  try {
    const load = async (method: string) => {
      const before = await direct.answered();
      const r = await runH2load({
        url: `http://127.0.0.1:${String(direct.ready.port)}${method}`,
        message: new Uint8Array(0),
        clients: 2,
        streams: 4,
        requests: 100,
      });
      return { succeeded: r.succeeded, answered: (await direct.answered()) - before };
    };
    assert.deepEqual(await load("/demo.v1.Echo/Say"), { succeeded: 100, answered: 100 });
    // UNIMPLEMENTED, in HTTP 200 trailers: what the bench reports as calls that never reached the instance.
    assert.deepEqual(await load("/demo.v1.Echo/NoSuchMethod"), { succeeded: 100, answered: 0 });
  } finally {
    await stop(direct);
  }
});

test("the sidecar-cost bench measures serve + sidecar process by process and prints the bound", { timeout: 180_000 }, async () => {
  const { code, output } = await runBench(["runtime/bench/sidecar.bench.ts"], {
    BENCH_ROUNDS: "1",
    BENCH_REQUESTS: "3000",
    BENCH_WARMUP_REQUESTS: "100",
    BENCH_LATENCY_REQUESTS: "100",
    BENCH_BASELINE: "",
  });
  assert.equal(code, 0, output);
  assert.doesNotMatch(output, /FAILED/);
  // Every process of the path has a figure: serve, sidecar, target, h2load, and again at one outstanding.
  assert.match(output, /\| serve \+ sidecar \| [\d,]+ \| [\d,]+ \| [\d,]+ \| [\d,]+ \| [\d,]+ \| [\d.]+ \| [\d,]+ \| [\d,]+ \| [\d,]+ \|/, output);
  // (CPU time is counted in 10 ms ticks: a figure of a short run may be "–" when it rounds to nothing.)
  assert.match(output, /bound: direct ≤ [\d,–]+ calls\/s .* = [\d.,–]+ × direct\. 0\.6 × direct/, output);
  assert.match(output, /added p50 at one outstanding: -?[\d,]+ µs/, output);
});

test("the serve A/B bench measures serve and sidecar per call for both trees, with and without the dashboard", { timeout: 180_000 }, async () => {
  // This tree against itself: the harness, not a difference, is under test.
  const { code, output } = await runBench(["runtime/bench/serve-ab.bench.ts"], {
    BENCH_BASELINE: repoRoot,
    BENCH_ROUNDS: "1",
    BENCH_SECONDS: "1",
    BENCH_WARMUP: "0.5",
  });
  assert.equal(code, 0, output);
  for (const row of ["baseline", "this tree", "baseline, dashboard \\+ metrics", "this tree, dashboard \\+ metrics"]) {
    assert.match(output, new RegExp(`\\| ${row} \\| [\\d,.]+ \\| [\\d,.]+ \\| [\\d,]+ \\|`), output);
  }
});

test("the per-call A/B tool reports CPU, bytes allocated and latency per call for each build", { timeout: 120_000 }, async () => {
  const { code, output } = await runBench(["runtime/bench/per-call-ab.mjs", "this=runtime/dist"], {
    AB_CALLS: "300",
    AB_LATENCY_CALLS: "100",
    AB_ROUNDS: "1",
    AB_WARMUP: "300",
  });
  assert.equal(code, 0, output);
  // req/s, router µs, bridge µs, router B, bridge B, p50 µs, p99 µs
  assert.match(output, /\| this \| [\d.]+ \| [\d.]+ \| [\d.]+ \| -?[\d.]+ \| -?[\d.]+ \| \d+ \| \d+ \|/, output);
});
