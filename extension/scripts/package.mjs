// `npm run package`: builds the VSIX for one platform, or for every platform buf ships for
// (`--all`): buf is a native binary, so each VS Code target gets its own VSIX. Each build is
// staged in a folder of its own (the manifest, the files it names, the extension's README and
// media, the bundles from build.mjs and that target's buf) and packed there with @vscode/vsce,
// so a build never touches the checkout and targets never mix binaries.
//   usage: npm run package [-- --target linux-x64 | --all] [--out DIR]
// Prints the path and size of each .vsix.
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { unzipSync } from "fflate";
import { BUF_PACKAGES, build, hostTarget } from "./build.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** Every VS Code target a VSIX is built for: one per buf platform package. */
export const TARGETS = Object.keys(BUF_PACKAGES);

/**
 * What the stage holds besides the bundles, as [from in the repo, to in the VSIX]. The
 * Marketplace page is the extension's own README (not the project's), with its media.
 */
const STAGED = [
  ["package.json", "package.json"],
  ["LICENSE", "LICENSE"],
  ["CHANGELOG.md", "CHANGELOG.md"],
  [".vscodeignore", ".vscodeignore"],
  ["extension/README.md", "README.md"],
  ["extension/media", "media"],
];

/** Files the manifest names (`./extension/language-configuration.json`, grammars, …). */
function manifestFiles(manifest) {
  const found = new Set();
  const walk = (v) => {
    if (typeof v === "string" && v.startsWith("./") && !v.startsWith("./extension/dist/") && existsSync(path.join(root, v))) found.add(path.normalize(v));
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === "object") Object.values(v).forEach(walk);
  };
  walk(manifest.contributes);
  return [...found];
}

/** Builds a VSIX for `target` into `outDir` from a stage (default: a fresh temp folder). */
export async function buildVsix(target, outDir, { stage, minify = false } = {}) {
  const from = stage ?? mkdtempSync(path.join(os.tmpdir(), "grpcrouter-vsix-"));
  try {
    const manifest = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8"));
    for (const [src, dest] of [...STAGED, ...manifestFiles(manifest).map((f) => [f, f])]) {
      if (!existsSync(path.join(root, src))) continue;
      mkdirSync(path.dirname(path.join(from, dest)), { recursive: true });
      cpSync(path.join(root, src), path.join(from, dest), { recursive: true });
    }
    await build(target, { minify, outRoot: from });
    return packVsix(target, outDir, from);
  } finally {
    if (!stage) rmSync(from, { recursive: true, force: true });
  }
}

/** Packs a built stage into `<name>-<target>-<version>.vsix` in `outDir`; returns its path. */
export function packVsix(target, outDir, from) {
  const { name, version } = JSON.parse(readFileSync(path.join(from, "package.json"), "utf8"));
  mkdirSync(outDir, { recursive: true });
  const vsix = path.join(outDir, `${name}-${target}-${version}.vsix`);
  const vsce = path.join(root, "node_modules", "@vscode", "vsce", "vsce");
  // --no-dependencies: the bundles hold every npm package the extension runs. The README's
  // relative links and screenshots (media/, shipped in the VSIX too) become URLs of
  // extension/ in the repository at this version's tag, which is what the Marketplace and
  // Open VSX pages can show.
  const base = `${repositoryUrl(from)}/raw/v${version}/extension/`;
  const r = spawnSync(
    process.execPath,
    [vsce, "package", "--no-dependencies", "--target", target, "--out", vsix, "--baseContentUrl", base.replace("/raw/", "/blob/"), "--baseImagesUrl", base],
    { cwd: from, stdio: ["ignore", "inherit", "inherit"] },
  );
  if (r.status !== 0) throw new Error(`vsce package failed (exit ${r.status ?? r.signal})`);
  return vsix;
}

/** The manifest's repository as an https URL without `.git`. */
function repositoryUrl(from) {
  const { repository } = JSON.parse(readFileSync(path.join(from, "package.json"), "utf8"));
  const url = typeof repository === "string" ? repository : repository?.url;
  if (!url) throw new Error("package.json has no repository: the Marketplace page needs it for the README's images");
  return url.replace(/^git\+/, "").replace(/\.git$/, "");
}

/** What the header of a native executable says it is built for, as a VS Code target. */
export function binaryTarget(bytes) {
  const u16 = (o) => bytes[o] | (bytes[o + 1] << 8);
  const u32 = (o) => (u16(o) | (u16(o + 2) << 16)) >>> 0;
  if (bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46) {
    return { 0x3e: "linux-x64", 0xb7: "linux-arm64" }[u16(18)] ?? `linux-machine-${u16(18)}`;
  }
  if (u32(0) === 0xfeedfacf) return { 0x01000007: "darwin-x64", 0x0100000c: "darwin-arm64" }[u32(4)] ?? `darwin-cpu-${u32(4)}`;
  if (bytes[0] === 0x4d && bytes[1] === 0x5a) {
    const pe = u32(0x3c);
    return { 0x8664: "win32-x64", 0xaa64: "win32-arm64" }[u16(pe + 4)] ?? `win32-machine-${u16(pe + 4)}`;
  }
  return "unknown";
}

/** The VSIX's manifest and its buf binary's target. */
export function inspectVsix(file) {
  const entries = unzipSync(readFileSync(file), {
    filter: (f) => f.name === "extension/package.json" || /^extension\/server\/dist\/bin\/buf(\.exe)?$/.test(f.name),
  });
  const manifest = JSON.parse(Buffer.from(entries["extension/package.json"]).toString("utf8"));
  const buf = Object.entries(entries).find(([n]) => n.includes("/bin/buf"));
  return { version: manifest.version, name: `${manifest.publisher}.${manifest.name}`, bufTarget: buf ? binaryTarget(buf[1]) : "none" };
}

/** Builds the VSIXs for `targets` (one at a time: each stage holds a ~45 MB buf). */
export async function packageTargets(targets, outDir, { minify = true } = {}) {
  const built = [];
  for (const target of targets) {
    const vsix = await buildVsix(target, outDir, { minify });
    built.push(vsix);
    console.log(`package: ${path.relative(process.cwd(), vsix)} (${(statSync(vsix).size / 1024 / 1024).toFixed(1)} MiB)`);
  }
  return built;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const args = process.argv.slice(2);
  const opt = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
  const targets = args.includes("--all") ? TARGETS : [opt("--target", BUF_PACKAGES[hostTarget] ? hostTarget : "linux-x64")];
  const unknown = targets.filter((t) => !BUF_PACKAGES[t]);
  if (unknown.length) {
    console.error(`package: unknown target ${unknown.join(", ")}; known: ${TARGETS.join(", ")}`);
    process.exit(2);
  }
  try {
    await packageTargets(targets, path.resolve(opt("--out", path.join(root, "dist"))));
  } catch (e) {
    console.error(`package: ${e instanceof Error ? e.message : e}`);
    process.exit(1);
  }
}
