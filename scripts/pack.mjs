// `npm run pack`: everything a release publishes, into one folder (dist-release/, git-ignored):
// the npm tarballs of @grpcrouter/runtime, @grpcrouter/generator and @grpcrouter/cli (their
// prepack scripts build what ships) and the VS Code extension's VSIX for this machine's
// platform, or for every platform with --all; then SHA256SUMS over them. The README's
// "Install" section installs from this folder; the release workflow publishes it.
//   usage: npm run pack [-- --all] [--out DIR]
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { hostTarget } from "../extension/scripts/build.mjs";
import { packageTargets, TARGETS } from "../extension/scripts/package.mjs";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
export const NPM_PACKAGES = ["@grpcrouter/runtime", "@grpcrouter/generator", "@grpcrouter/cli"];

/** The VSIX platforms to pack: every one with --all, else this machine's (linux-x64 where none is built). */
export function vsixTargets(all) {
  return all ? TARGETS : [TARGETS.includes(hostTarget) ? hostTarget : "linux-x64"];
}

/** Packs the npm packages and the VSIXs for `targets` into `out` (emptied first); returns the files. */
export async function packRelease(out, targets) {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  const r = spawnSync(npm, ["pack", "--pack-destination", out, ...NPM_PACKAGES.flatMap((w) => ["-w", w])], {
    cwd: root,
    stdio: ["ignore", "ignore", "inherit"],
    shell: process.platform === "win32",
  });
  if (r.status !== 0) throw new Error(`npm pack failed (exit ${r.status ?? r.signal})`);
  await packageTargets(targets, out);
  const files = readdirSync(out)
    .filter((f) => f.endsWith(".tgz") || f.endsWith(".vsix"))
    .sort();
  const sums = files.map(
    (f) =>
      `${createHash("sha256")
        .update(readFileSync(path.join(out, f)))
        .digest("hex")}  ${f}`,
  );
  writeFileSync(path.join(out, "SHA256SUMS"), `${sums.join("\n")}\n`);
  return files.map((f) => path.join(out, f));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const out = path.resolve(args.includes("--out") ? args[args.indexOf("--out") + 1] : path.join(root, "dist-release"));
  const targets = vsixTargets(args.includes("--all"));
  try {
    const started = Date.now();
    const files = await packRelease(out, targets);
    for (const f of files) console.log(`pack: ${path.relative(process.cwd(), f)} (${(statSync(f).size / 1024 / 1024).toFixed(2)} MiB)`);
    console.log(`pack: ${files.length} files in ${path.relative(process.cwd(), out) || "."} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  } catch (e) {
    console.error(`pack: ${e instanceof Error ? e.message : e}`);
    process.exit(1);
  }
}
