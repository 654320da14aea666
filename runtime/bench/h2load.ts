// h2load (nghttp2-client, a C load generator) as the benchmark's client: gRPC calls are
// HTTP/2 POSTs of a length-prefixed message, so h2load can send them with the right headers.
// h2load counts HTTP statuses, not grpc-status: every path is checked with one real gRPC call
// first (check.ts). Latency percentiles come from h2load's per-request log (--log-file).
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

export interface H2loadSpec {
  /** e.g. "http://127.0.0.1:50051/demo.v1.Echo/Say" */
  url: string;
  /** The request message (serialized protobuf, without gRPC's 5-byte prefix). */
  message: Uint8Array;
  clients: number;
  /** Streams at once per client (h2load -m). */
  streams: number;
  /** Timing-based run: seconds measured (h2load -D; default 3) after `warmupSeconds` (default none). */
  seconds?: number;
  warmupSeconds?: number;
  /** A run only to warm up: it may end with no request done (long streams on a slow machine). */
  warmupOnly?: boolean;
  /** Count-based run instead (h2load -n), e.g. for a quick check of the harness. */
  requests?: number;
  /** Write and read the per-request log for latency percentiles. */
  latency?: boolean;
}

export interface H2loadResult {
  requestsPerSecond: number;
  /** Requests h2load completed (measured phase). */
  done: number;
  succeeded: number;
  failed: number;
  errored: number;
  timeout: number;
  status2xx: number;
  /** Latency of the logged requests, µs; undefined unless `latency` was asked for. */
  p50Us?: number;
  p99Us?: number;
  /** Requests in the per-request log. */
  logged?: number;
}

/** The gRPC framing of one uncompressed message: flag 0, big-endian length, bytes. */
export function grpcFrame(message: Uint8Array): Buffer {
  const b = Buffer.alloc(5 + message.length);
  b.writeUInt32BE(message.length, 1);
  b.set(message, 5);
  return b;
}

/** The p-th percentile (0..100) of ascending `sorted`, nearest rank. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

/** Parses h2load's summary (stdout). Throws, quoting it, when a line is missing. */
export function parseH2loadOutput(out: string): H2loadResult {
  const need = (re: RegExp, what: string): RegExpMatchArray => {
    const m = out.match(re);
    if (!m) throw new Error(`h2load output has no ${what}:\n${out}`);
    return m;
  };
  const rps = need(/finished in [\d.]+\w*, ([\d.]+) req\/s/, '"finished in …, N req/s" line');
  const req = need(/requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/, "requests line");
  const codes = need(/status codes: (\d+) 2xx/, "status codes line");
  return {
    requestsPerSecond: Number(rps[1]),
    done: Number(req[3]),
    succeeded: Number(req[4]),
    failed: Number(req[5]),
    errored: Number(req[6]),
    timeout: Number(req[7]),
    status2xx: Number(codes[1]),
  };
}

/** Latencies (µs, ascending) of the 2xx requests in an h2load --log-file. */
export function parseH2loadLog(text: string): Float64Array {
  const values: number[] = [];
  for (const line of text.split("\n")) {
    // start time (µs since the epoch) \t HTTP status \t µs until the end of the response
    const [, status, us] = line.split("\t");
    if (status === undefined || us === undefined) continue;
    if (status.startsWith("2")) values.push(Number(us));
  }
  return Float64Array.from(values).sort();
}

export function h2loadArgs(spec: H2loadSpec, bodyFile: string, logFile?: string): string[] {
  const args = [
    "-t",
    "1",
    "-c",
    String(spec.clients),
    "-m",
    String(spec.streams),
    "-H",
    "content-type: application/grpc",
    "-H",
    "te: trailers",
    "-d",
    bodyFile,
  ];
  if (spec.requests !== undefined) args.push("-n", String(spec.requests));
  else {
    // Whole milliseconds: h2load takes a unit ("ms") but no fractional seconds.
    const ms = (s: number) => `${Math.max(0, Math.round(s * 1000))}ms`;
    args.push("-D", ms(spec.seconds ?? 3));
    if (spec.warmupSeconds) args.push("--warm-up-time", ms(spec.warmupSeconds));
  }
  if (logFile) args.push("--log-file", logFile);
  args.push(spec.url);
  return args;
}

/** Runs h2load once; rejects when it cannot run or reports no request done. */
export async function runH2load(spec: H2loadSpec): Promise<H2loadResult> {
  const dir = mkdtempSync(path.join(tmpdir(), "grpcrouter-h2load-"));
  try {
    const body = path.join(dir, "body");
    writeFileSync(body, grpcFrame(spec.message));
    const log = spec.latency ? path.join(dir, "log") : undefined;
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn("h2load", h2loadArgs(spec, body, log), { stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d));
      child.stderr.on("data", (d: Buffer) => (stderr += d));
      child.once("error", (e) => reject(new Error(`h2load could not run (${e.message}): install Debian's nghttp2-client (scripts/ensure-bench-deps.sh)`)));
      child.once("close", (code) => resolve({ code, stdout, stderr }));
    });
    if (code !== 0) throw new Error(`h2load exited with ${code}:\n${stdout}${stderr}`);
    const result = parseH2loadOutput(stdout);
    if (result.succeeded === 0 && !spec.warmupOnly) throw new Error(`h2load: no request succeeded:\n${stdout}`);
    if (log) {
      const latencies = parseH2loadLog(readFileSync(log, "utf8"));
      result.logged = latencies.length;
      result.p50Us = percentile(latencies, 50);
      result.p99Us = percentile(latencies, 99);
    }
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
