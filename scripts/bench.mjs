// `npm run bench`: every benchmark, one after the other (never in parallel: the machine is
// small and shared). Each prints its own baseline, measured in the same run, and ratios
// against it; nothing here asserts a time. `npm run bench -- router` runs only matching ones.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const benches = [
  ["router", "runtime/bench/router.bench.ts"],
  ["balancer", "runtime/bench/balancer.bench.ts"],
  ["web", "runtime/bench/web.bench.ts"],
  ["generate", "generator/bench/generate.bench.ts"],
  ["editor", "server/bench/editor.bench.ts"],
];
const filters = process.argv.slice(2);
let failed = false;
for (const [name, file] of benches) {
  if (filters.length > 0 && !filters.some((f) => name.includes(f))) continue;
  if (!existsSync(path.join(root, file))) continue;
  console.log(`\n== ${name} (${file})`);
  const r = spawnSync(process.execPath, ["--conditions=@grpcrouter/source", "--import", "tsx", file], {
    cwd: root,
    stdio: "inherit",
  });
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
