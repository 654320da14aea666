// `npm run bench:generate`: how long in-process generation (all phases, no writing) takes on
// the example, test-fixtures/many and two generated modules (50 and 200 files), next to a
// bare `buf build` of the same module measured in the same run, so the ratios hold on any
// machine. The language server runs this on every save: the figure that matters is "warm,
// one file edited" on the 50-file module (aim: ≤ 300 ms).
//
//   cold       first generate() of the module in this process (empty caches)
//   warm edit  a comment changed in one file (as an editor save), caches from the run before
//   warm same  nothing changed (the compile result is reused)
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { generate } from "../src/index.js";
import { runBuf } from "../src/compiler/buf.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const RUNS = Number(process.env.BENCH_RUNS ?? 7);

/** A module of `n` files: each has messages, imports its predecessor, and a 4-method service. */
function syntheticModule(n: number): string {
  const dir = mkdtempSync(path.join(tmpdir(), `grpcrouter-bench-${n}-`));
  for (let i = 0; i < n; i++) {
    const id = String(i).padStart(3, "0");
    const prev = i > 0 ? String(i - 1).padStart(3, "0") : undefined;
    const lines = [
      'syntax = "proto3";',
      "",
      `package bench.p${id}.v1;`,
      "",
      'import "google/protobuf/timestamp.proto";',
      ...(prev ? [`import "bench/p${prev}/v1/file.proto";`] : []),
      "",
      `// Thing${id} is what service S${id} serves.`,
      `message Thing${id} {`,
      "  string id = 1;",
      "  int64 size = 2;",
      "  google.protobuf.Timestamp at = 3;",
      "  repeated string tags = 4;",
      "  map<string, string> labels = 5;",
      ...(prev ? [`  bench.p${prev}.v1.Thing${prev} parent = 6;`] : []),
      "}",
      "",
      `message Get${id}Request {`,
      "  string id = 1;",
      "}",
      "",
      `// S${id} is service number ${i}.`,
      `service S${id} {`,
      `  // Get returns one thing.`,
      `  rpc Get(Get${id}Request) returns (Thing${id});`,
      `  rpc List(Get${id}Request) returns (stream Thing${id});`,
      `  rpc Put(stream Thing${id}) returns (Thing${id});`,
      `  rpc Sync(stream Thing${id}) returns (stream Thing${id});`,
      "}",
      "",
    ];
    const file = path.join(dir, "bench", `p${id}`, "v1", "file.proto");
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, lines.join("\n"));
  }
  return dir;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

interface Row {
  module: string;
  files: number;
  buf: number;
  cold: number;
  warmEdit: number;
  warmSame: number;
}

async function measure(name: string, root: string, editFile: string): Promise<Row> {
  const out = mkdtempSync(path.join(tmpdir(), "grpcrouter-bench-out-"));
  try {
    const bufTimes: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      bufTimes.push(
        await time(async () => {
          const r = await runBuf(["build", root, "--output", "-#format=binpb"]);
          if (r.status !== 0) throw new Error(`buf build ${root}: ${r.stderr}`);
        }),
      );
    }
    let files = 0;
    const cold = await time(async () => {
      const r = await generate({ root, out });
      if (r.diagnostics.some((d) => d.severity === "error")) throw new Error(`${name}: ${r.diagnostics[0]!.message}`);
      files = r.files.length;
    });
    const original = readFileSync(path.join(root, editFile), "utf8");
    const edits: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const overlay = { [editFile]: `${original}\n// edit ${i}\n` };
      edits.push(await time(() => generate({ root, out, overlay })));
    }
    const same: number[] = [];
    for (let i = 0; i < RUNS; i++) same.push(await time(() => generate({ root, out, overlay: { [editFile]: `${original}\n// edit ${RUNS - 1}\n` } })));
    return { module: name, files, buf: median(bufTimes), cold, warmEdit: median(edits), warmSame: median(same) };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

const synthetic50 = syntheticModule(50);
const synthetic200 = syntheticModule(200);
try {
  const rows: Row[] = [];
  rows.push(await measure("examples/echo", path.join(repoRoot, "examples/echo/proto"), "demo/v1/echo.proto"));
  rows.push(await measure("test-fixtures/many (100 methods)", path.join(repoRoot, "test-fixtures/many/proto"), "bulk/v1/bulk.proto"));
  // The edited file sits in the middle of the import chain: everything after it depends on it.
  rows.push(await measure("generated, 50 files", synthetic50, "bench/p025/v1/file.proto"));
  rows.push(await measure("generated, 200 files", synthetic200, "bench/p100/v1/file.proto"));

  const ms = (x: number) => `${x.toFixed(0)} ms`.padStart(8);
  const ratio = (x: number, base: number) => `${(x / base).toFixed(1)}×`.padStart(7);
  console.log(`grpcrouter generate (in-process, all phases, no writes); medians of ${RUNS} runs; ratios against a bare \`buf build\` of the same module\n`);
  console.log(
    `${"module".padEnd(34)} ${"outputs".padStart(7)} ${"buf build".padStart(9)} ${"cold".padStart(8)} ${"ratio".padStart(7)} ${"warm edit".padStart(9)} ${"ratio".padStart(7)} ${"warm same".padStart(9)}`,
  );
  for (const r of rows) {
    console.log(
      `${r.module.padEnd(34)} ${String(r.files).padStart(7)} ${ms(r.buf).padStart(9)} ${ms(r.cold)} ${ratio(r.cold, r.buf)} ${ms(r.warmEdit).padStart(9)} ${ratio(r.warmEdit, r.buf)} ${ms(r.warmSame).padStart(9)}`,
    );
  }
  const fifty = rows[2]!;
  console.log(`\nwarm edit on the 50-file module: ${fifty.warmEdit.toFixed(0)} ms (target ≤ 300 ms: ${fifty.warmEdit <= 300 ? "met" : "NOT met"})`);
} finally {
  rmSync(synthetic50, { recursive: true, force: true });
  rmSync(synthetic200, { recursive: true, force: true });
}
