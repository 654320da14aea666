// `npm test`: the one test command, for developers and CI alike.
// 1. makes sure the machine has what the tests drive for real (Debian's chromium, code-server),
// 2. type-checks every workspace (tsc --build, strict),
// 3. runs every workspace's tests in one node:test run, so one summary counts them all.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
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

run("bash", ["scripts/ensure-test-deps.sh"]);
run(process.execPath, [path.join("node_modules", "typescript", "bin", "tsc"), "-b", "tsconfig.json"]);
if (existsSync("scripts/pretest.mjs")) run(process.execPath, ["scripts/pretest.mjs"]);

// Every *.test.ts below a workspace's test/ folder; a filter may be given: npm test -- runtime
const filters = process.argv.slice(2);
const workspaces = ["generator", "runtime", "cli", "server", "extension", "examples/echo"];
const files = [];
function walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (name === "node_modules" || name === "fixtures-out") continue;
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith(".test.ts")) files.push(p);
  }
}
for (const ws of workspaces) if (existsSync(path.join(ws, "test"))) walk(path.join(ws, "test"));
const selected = files.filter((f) => filters.length === 0 || filters.some((x) => f.includes(x))).sort();
if (selected.length === 0) {
  console.error("no test files matched");
  process.exit(1);
}
run(process.execPath, [
  "--conditions=@grpcrouter/source",
  "--import",
  "tsx",
  "--test",
  "--test-concurrency=2",
  "--test-timeout=300000",
  ...selected,
]);
