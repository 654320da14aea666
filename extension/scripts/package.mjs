// `npm run package`: builds the VSIX for one platform (buf is a native binary, so each VS Code
// target gets its own): bundles with build.mjs, then packs with @vscode/vsce from the repo root,
// whose package.json is the extension manifest. .vscodeignore is an allow-list of the bundles.
//   usage: npm run package [-- --target linux-x64] [--out DIR]
// Prints the path and size of the .vsix.
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { BUF_PACKAGES, build } from "./build.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const args = process.argv.slice(2);
const opt = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const target = opt("--target", "linux-x64");
const outDir = path.resolve(opt("--out", path.join(root, "dist")));

/** Files beside the bundles that the VSIX holds (the manifest and what it names). */
const MANIFEST_FILES = ["package.json", "README.md", "LICENSE", "CHANGELOG.md", ".vscodeignore", "extension/language-configuration.json", "extension/syntaxes/proto.tmLanguage.json"];

/**
 * Builds into a folder of its own (`stage`) and packs that: the manifest and the files it
 * names are copied there, so a build never touches the checkout's dist folders.
 */
export async function buildVsix(target, outDir, { stage, minify = false } = {}) {
  const from = stage ?? mkdtempSync(path.join(os.tmpdir(), "grpcrouter-vsix-"));
  for (const f of MANIFEST_FILES) {
    if (!existsSync(path.join(root, f))) continue;
    mkdirSync(path.dirname(path.join(from, f)), { recursive: true });
    cpSync(path.join(root, f), path.join(from, f));
  }
  await build(target, { minify, outRoot: from });
  return packVsix(target, outDir, from);
}

/** Packs a built tree (`from`: the repo, or a stage) into a VSIX; returns its path. */
export function packVsix(target, outDir, from = root) {
  const { name, version } = JSON.parse(readFileSync(path.join(from, "package.json"), "utf8"));
  mkdirSync(outDir, { recursive: true });
  const vsix = path.join(outDir, `${name}-${target}-${version}.vsix`);
  const vsce = path.join(root, "node_modules", "@vscode", "vsce", "vsce");
  // --no-dependencies: the bundles hold every npm package the extension runs; the workspace's
  // node_modules stay out. The manifest names no repository yet, so README links stay relative.
  const r = spawnSync(
    process.execPath,
    [vsce, "package", "--no-dependencies", "--target", target, "--out", vsix, "--allow-missing-repository", "--no-rewrite-relative-links"],
    { cwd: from, stdio: ["ignore", "inherit", "inherit"] },
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
