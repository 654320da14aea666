// `npm test`: the one test command, for developers and CI alike.
// 0. checks formatting and lint rules (`npm run lint`, Biome: about a second),
// 1. makes sure the machine has what the tests drive for real (Debian's chromium, code-server),
// 2. type-checks every workspace (tsc --build, strict),
// 3. runs every workspace's tests in one node:test run, so one summary counts them all,
// 4. fails a run in which any test was skipped (or todo), unless GRPCROUTER_ALLOW_SKIPS=1,
//    and fails when a workspace has no test at all: a green run means every test ran.
// `npm run coverage` (--coverage) does the same under c8 and prints line, branch and function
// coverage per workspace; child processes (the CLI, the bundled language server) are covered
// too, since NODE_V8_COVERAGE reaches them through the environment.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
process.chdir(root);

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: "inherit", ...opts });
  if (r.status !== 0) {
    console.error(`\n${cmd} ${args.join(" ")} failed (exit ${r.status ?? r.signal})`);
    process.exit(r.status || 1);
  }
  return r;
}

// First, as it takes a second: unformatted code or a lint finding fails the run, locally and in CI.
const lint = spawnSync("npm", ["run", "--silent", "lint"], { stdio: "inherit" });
if (lint.status !== 0) fail("formatting or lint rules failed (above): run `npm run format`, fix what `npm run lint` still reports, then run the tests again");
run("bash", ["scripts/ensure-test-deps.sh"]);
run(process.execPath, [path.join("node_modules", "typescript", "bin", "tsc"), "-b", "tsconfig.json"]);
if (existsSync("scripts/pretest.mjs")) run(process.execPath, ["scripts/pretest.mjs"]);

// Every *.test.ts below a workspace's test/ folder; a filter may be given: npm test -- runtime
const args = process.argv.slice(2);
const coverage = args.includes("--coverage");
const filters = args.filter((a) => a !== "--coverage");
// Every workspace of the root package.json: one added later without tests fails the run too.
const workspaces = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")).workspaces;
function walk(dir, files = []) {
  if (!existsSync(dir)) return files;
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (name === "node_modules" || name === "fixtures-out") continue;
    if (statSync(p).isDirectory()) walk(p, files);
    else if (name.endsWith(".test.ts")) files.push(p);
  }
  return files;
}
const files = [];
for (const ws of workspaces) {
  const found = walk(path.join(ws, "test"));
  // A workspace whose tests vanished (a moved folder, a renamed suffix) must not pass quietly.
  if (found.length === 0) fail(`workspace ${ws} has no tests: expected ${ws}/test/**/*.test.ts`);
  files.push(...found);
}
const selected = files.filter((f) => filters.length === 0 || filters.some((x) => f.includes(x))).sort();
if (selected.length === 0) fail("no test files matched");

// Beside the usual reporter (spec on a terminal, TAP otherwise, as node picks by default),
// test-outcome-reporter.mjs writes what did not run to a file read below.
const outcomeDir = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-test-"));
const outcomeFile = path.join(outcomeDir, "outcome.json");
const nodeTest = [
  process.execPath,
  "--conditions=@grpcrouter/source",
  "--import",
  "tsx",
  "--test",
  "--test-concurrency=2",
  // Coverage slows every process (the CLI tests spawn many): twice the time under it.
  `--test-timeout=${coverage ? 600_000 : 300_000}`,
  `--test-reporter=${process.stdout.isTTY ? "spec" : "tap"}`,
  "--test-reporter-destination=stdout",
  `--test-reporter=${path.join(root, "scripts", "test-outcome-reporter.mjs")}`,
  `--test-reporter-destination=${outcomeFile}`,
  ...selected,
];
const coverageDir = path.join(root, "coverage");
const c8 = [
  path.join(root, "node_modules", "c8", "bin", "c8.js"),
  `--reports-dir=${coverageDir}`,
  "--reporter=json-summary",
  "--reporter=html",
  // Every source file of the workspaces counts, loaded or not. Files are matched after
  // source maps are applied, so the bundled language server counts for the sources it was
  // built from. (Only excludes: c8 12 with --include maps a bundle's coverage wrongly.)
  "--all",
  ...["runtime", "generator", "cli", "server", "extension"].map((ws) => `--src=${ws}/src`),
  "--exclude-after-remap",
  // Generated protobuf code is not ours to cover; tests, scripts and examples are not product;
  // the dashboard's page scripts (admin/ui) run in the browser, where node sees no coverage.
  ...[
    "**/gen/**",
    "**/*.d.ts",
    "**/test/**",
    "**/bench/**",
    "**/dist/**",
    "**/scripts/**",
    "examples/**",
    "**/node_modules/**",
    "runtime/src/admin/ui/**",
    "runtime/src/discovery/proto/**",
  ].map((g) => `--exclude=${g}`),
];
const testRun = coverage
  ? spawnSync(process.execPath, [...c8, ...nodeTest], { stdio: "inherit", env: { ...process.env, GRPCROUTER_COVERAGE: "1" } })
  : spawnSync(nodeTest[0], nodeTest.slice(1), { stdio: "inherit" });
const outcome = existsSync(outcomeFile) ? JSON.parse(readFileSync(outcomeFile, "utf8")) : undefined;
rmSync(outcomeDir, { recursive: true, force: true });
if (coverage) printCoverage();
if (testRun.status !== 0) fail(`node --test failed (exit ${testRun.status ?? testRun.signal})`);
if (!outcome) fail("the test run reported no outcome (scripts/test-outcome-reporter.mjs)");
if (outcome.notRun.length > 0) {
  console.error(`\n${outcome.notRun.length} test(s) did not run:`);
  for (const t of outcome.notRun)
    console.error(`  ${t.kind}: ${t.name}${t.reason ? ` (${t.reason})` : ""}${t.file ? `  [${path.relative(root, t.file)}]` : ""}`);
  if (process.env.GRPCROUTER_ALLOW_SKIPS === "1") console.error("GRPCROUTER_ALLOW_SKIPS=1: accepted.");
  else fail("a run that skipped tests is not green; fix the cause, or set GRPCROUTER_ALLOW_SKIPS=1 to accept it knowingly");
}

function fail(message) {
  console.error(`\n${message}`);
  process.exit(1);
}

/** Lines, branches and functions covered, per workspace, from c8's json-summary. */
function printCoverage() {
  const summaryFile = path.join(coverageDir, "coverage-summary.json");
  if (!existsSync(summaryFile)) return console.error("no coverage summary was written");
  const summary = JSON.parse(readFileSync(summaryFile, "utf8"));
  const totals = new Map();
  for (const [file, m] of Object.entries(summary)) {
    if (file === "total") continue;
    const ws = path.relative(root, file).split(path.sep)[0];
    const t = totals.get(ws) ?? { lines: [0, 0], branches: [0, 0], functions: [0, 0] };
    for (const k of Object.keys(t)) {
      t[k][0] += m[k].covered;
      t[k][1] += m[k].total;
    }
    totals.set(ws, t);
  }
  const pct = ([c, n]) => (n === 0 ? "   -  " : `${((100 * c) / n).toFixed(1).padStart(5)}%`);
  console.log("\ncoverage      lines  branches  functions");
  for (const [ws, t] of [...totals].sort()) console.log(`${ws.padEnd(11)} ${pct(t.lines)}   ${pct(t.branches)}    ${pct(t.functions)}`);
  const all = summary.total;
  console.log(
    `${"all".padEnd(11)} ${pct([all.lines.covered, all.lines.total])}   ${pct([all.branches.covered, all.branches.total])}    ${pct([all.functions.covered, all.functions.total])}`,
  );
  console.log(`(per file: ${path.relative(root, path.join(coverageDir, "index.html"))})`);
}
