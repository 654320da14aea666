// `npm run bench -- web`: unary Echo.Say through the router with h2load (nghttp2-client),
// as native gRPC (the baseline), as gRPC-Web and as Connect (binary) over HTTP/2, and as
// native gRPC on a bare node:http2 server without the HTTP/1.1 sniffing in front. Router and
// instance are processes of their own. Prints req/s (medians of alternating rounds) and the
// ratios to native gRPC on the router's port. Nothing is asserted.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const requests = Number(process.env.BENCH_REQUESTS ?? 20000);
const rounds = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));
const children: ChildProcess[] = [];

function start(script: string, args: string[]): Promise<Record<string, unknown>> {
  const child = spawn(process.execPath, ["--conditions=@grpcrouter/source", "--import", "tsx", script, ...args], { stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  return new Promise((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`${script} exited with ${code}`)));
    createInterface({ input: child.stdout! }).once("line", (line) => resolve(JSON.parse(line)));
  });
}

// SayRequest{text: "hi"}: field 1, length 2.
const message = Buffer.from([0x0a, 0x02, 0x68, 0x69]);
const framed = Buffer.concat([Buffer.from([0, 0, 0, 0, message.length]), message]);
const dir = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-web-bench-"));
writeFileSync(path.join(dir, "framed"), framed);
writeFileSync(path.join(dir, "plain"), message);

function h2load(url: string, body: string, headers: string[]): number {
  const args = ["-n", String(requests), "-c", "4", "-m", "16", "-t", "1", "-d", path.join(dir, body), ...headers.flatMap((h) => ["-H", h]), url];
  const r = spawnSync("h2load", args, { encoding: "utf8" });
  const rps = /finished in [^,]+, ([\d.]+) req\/s/.exec(r.stdout);
  const ok = /requests: .* (\d+) succeeded, (\d+) failed/.exec(r.stdout);
  if (!rps || !ok || Number(ok[2]) > 0) throw new Error(`h2load ${args.join(" ")} failed:\n${r.stdout}${r.stderr}`);
  return Number(rps[1]);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

try {
  const { port, bare } = (await start(here("./web-servers.mjs"), [])) as { port: number; bare: number };
  await start(here("./echo-servers.mjs"), ["instance", `127.0.0.1:${port}`, "web-bench"]);
  const path_ = "/demo.v1.Echo/Say";
  const cases: Array<[string, () => number]> = [
    ["gRPC, router port", () => h2load(`http://127.0.0.1:${port}${path_}`, "framed", ["content-type: application/grpc", "te: trailers"])],
    ["gRPC, bare http2 server", () => h2load(`http://127.0.0.1:${bare}${path_}`, "framed", ["content-type: application/grpc", "te: trailers"])],
    ["gRPC-Web, router port", () => h2load(`http://127.0.0.1:${port}${path_}`, "framed", ["content-type: application/grpc-web+proto", "x-grpc-web: 1"])],
    [
      "Connect proto, router port",
      () => h2load(`http://127.0.0.1:${port}${path_}`, "plain", ["content-type: application/proto", "connect-protocol-version: 1"]),
    ],
  ];
  for (const [, run] of cases) run(); // warm up (JIT, connections of the bridge)
  const results = new Map<string, number[]>(cases.map(([n]) => [n, []]));
  for (let i = 0; i < rounds; i++) for (const [name, run] of cases) results.get(name)!.push(run());
  const base = median(results.get(cases[0]![0])!);
  console.log(`unary Echo.Say, ${requests} requests per run, 4 connections x 16 streams, median of ${rounds}`);
  for (const [name] of cases) {
    const m = median(results.get(name)!);
    console.log(`  ${name.padEnd(28)} ${m.toFixed(0).padStart(8)} req/s   ${(m / base).toFixed(2)} x gRPC on the router port`);
  }
} finally {
  for (const c of children) c.kill("SIGTERM");
}
