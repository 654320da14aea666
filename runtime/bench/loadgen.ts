// A gRPC load generator on @grpc/grpc-js, run in its own process so that it never shares
// an event loop with the servers it measures. It sends pre-encoded request bytes (identity
// serializers), keeps `concurrency` calls outstanding for `seconds` after a warm-up, and
// prints one JSON line: calls (or streamed messages) per second and latency percentiles.
//
//   node --import tsx runtime/bench/loadgen.ts '{"target":"127.0.0.1:50051", ...}'
import * as grpc from "@grpc/grpc-js";

export interface LoadSpec {
  target: string;
  method: string; // e.g. "/demo.v1.Echo/Say"
  kind: "unary" | "server_streaming";
  request: string; // request message bytes, base64
  concurrency: number;
  seconds: number;
  warmupSeconds: number;
}

export interface LoadResult {
  calls: number;
  messages: number;
  errors: number;
  seconds: number;
  callsPerSecond: number;
  messagesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Calls and messages completed including the warm-up (for CPU per call). */
  allCalls: number;
  allMessages: number;
  firstError?: string;
}

const identity = (b: Buffer) => b;

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length));
  return sorted[i]!;
}

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const client = new grpc.Client(spec.target, grpc.credentials.createInsecure(), {
    "grpc.max_receive_message_length": 64 * 1024 * 1024,
  });
  await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + 10_000, (e) => (e ? reject(e) : resolve())));
  const request = Buffer.from(spec.request, "base64");
  let latencies = new Float64Array(1 << 20);
  let n = 0;
  let calls = 0;
  let messages = 0;
  let errors = 0;
  let firstError: string | undefined;
  let measuring = false;
  let stopping = false;

  let allCalls = 0;
  let allMessages = 0;
  const record = (start: bigint, msgs: number) => {
    allCalls++;
    allMessages += msgs;
    if (!measuring) return;
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    if (n === latencies.length) {
      const bigger = new Float64Array(latencies.length * 2);
      bigger.set(latencies);
      latencies = bigger;
    }
    latencies[n++] = ms;
    calls++;
    messages += msgs;
  };
  const fail = (e: Error) => {
    errors++;
    firstError ??= e.message;
  };

  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const start = process.hrtime.bigint();
      if (spec.kind === "unary") {
        client.makeUnaryRequest(spec.method, identity, identity, request, (err) => {
          if (err) fail(err);
          else record(start, 1);
          resolve();
        });
      } else {
        let got = 0;
        const call = client.makeServerStreamRequest(spec.method, identity, identity, request);
        call.on("data", () => got++);
        call.on("error", (e) => {
          fail(e);
          resolve();
        });
        call.on("end", () => {
          record(start, got);
          resolve();
        });
      }
    });

  const loop = async () => {
    while (!stopping) await one();
  };
  const loops = Array.from({ length: spec.concurrency }, loop);
  await new Promise((r) => setTimeout(r, spec.warmupSeconds * 1000));
  measuring = true;
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, spec.seconds * 1000));
  measuring = false;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  stopping = true;
  await Promise.all(loops);
  client.close();
  const sorted = latencies.subarray(0, n).sort();
  return {
    calls,
    messages,
    errors,
    seconds,
    callsPerSecond: calls / seconds,
    messagesPerSecond: messages / seconds,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    allCalls,
    allMessages,
    ...(firstError ? { firstError } : {}),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const spec = JSON.parse(process.argv[2] ?? "{}") as LoadSpec;
  runLoad(spec).then(
    (r) => {
      process.stdout.write(JSON.stringify(r) + "\n");
      process.exit(0);
    },
    (e) => {
      process.stderr.write(String(e?.stack ?? e) + "\n");
      process.exit(1);
    },
  );
}
