// `npm run package`: builds the VSIX for one platform (buf is a native binary, so each VS Code
// target gets its own): bundles with build.mjs, then packs with @vscode/vsce from the repo root,
// whose package.json is the extension manifest. .vscodeignore is an allow-list of the bundles.
//   usage: npm run package [-- --target linux-x64] [--out DIR]
// Prints the path and size of the .vsix.
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { BUF_PACKAGES, build } from "./build.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const args = process.argv.slice(2);
const opt = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const target = opt("--target", "linux-x64");
const outDir = path.resolve(opt("--out", path.join(root, "dist")));

/** Packs a built tree into a VSIX; returns its path. */
export function packVsix(target, outDir) {
  const { name, version } = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8"));
  mkdirSync(outDir, { recursive: true });
  const vsix = path.join(outDir, `${name}-${target}-${version}.vsix`);
  const vsce = path.join(root, "node_modules", "@vscode", "vsce", "vsce");
  // --no-dependencies: the bundles hold every npm package the extension runs; the workspace's
  // node_modules stay out. The manifest names no repository yet, so README links stay relative.
  const r = spawnSync(
    process.execPath,
    [vsce, "package", "--no-dependencies", "--target", target, "--out", vsix, "--skip-license", "--allow-missing-repository", "--no-rewrite-relative-links"],
    { cwd: root, stdio: ["ignore", "inherit", "inherit"] },
  );
  if (r.status !== 0) throw new Error(`vsce package failed (exit ${r.status ?? r.signal})`);
  return vsix;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  if (!BUF_PACKAGES[target]) {
    console.error(`package: unknown target ${target}; known: ${Object.keys(BUF_PACKAGES).join(", ")}`);
    process.exit(2);
  }
  try {
    await build(target, { minify: true });
    const vsix = packVsix(target, outDir);
    console.log(`package: ${path.relative(process.cwd(), vsix)} (${(statSync(vsix).size / 1024 / 1024).toFixed(1)} MiB)`);
  } catch (e) {
    console.error(`package: ${e instanceof Error ? e.message : e}`);
    process.exit(1);
  }
}
