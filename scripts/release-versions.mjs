// One version for everything a release ships: the npm packages (runtime, generator, cli), the
// private workspaces, the VS Code extension (the root package.json is its manifest), the CLI's
// --version, the internal dependency ranges, the CHANGELOG's newest section and, on a tag,
// the tag itself.
//   node scripts/release-versions.mjs check [--tag v1.2.3]   exit 1 with one line per mismatch
//   node scripts/release-versions.mjs version                 `changeset version`, then the rest follows
//   (--dir DIR: act on a copy of the repository laid out the same way, as the tests do)
// `version` is what a maintainer runs before tagging (npm run version-packages): Changesets
// (a fixed group: every package moves together) picks the next version from .changeset/*.md;
// this script then carries it to the manifest and the CLI and turns the changesets' summaries
// into the CHANGELOG section of that version.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
export const WORKSPACES = ["runtime", "generator", "cli", "server", "extension", "examples/echo"];
const CLI_VERSION_FILE = "cli/src/version.ts";

/** Every place a version is written, as [where, version found]. */
export function versionSites(dir = root) {
  const json = (f) => JSON.parse(readFileSync(path.join(dir, f), "utf8"));
  const sites = [["package.json (extension manifest)", json("package.json").version]];
  const names = new Set();
  for (const ws of WORKSPACES) {
    const pkg = json(`${ws}/package.json`);
    names.add(pkg.name);
    sites.push([`${ws}/package.json`, pkg.version]);
  }
  // Internal dependencies name the same version (exact or ^).
  for (const ws of WORKSPACES) {
    const pkg = json(`${ws}/package.json`);
    for (const field of ["dependencies", "devDependencies", "peerDependencies"]) {
      for (const [dep, range] of Object.entries(pkg[field] ?? {})) {
        if (names.has(dep)) sites.push([`${ws}/package.json ${field}.${dep}`, String(range).replace(/^[\^~]/, "")]);
      }
    }
  }
  const cli = readFileSync(path.join(dir, CLI_VERSION_FILE), "utf8").match(/CLI_VERSION = "([^"]+)"/);
  sites.push([`${CLI_VERSION_FILE} CLI_VERSION`, cli?.[1]]);
  const changelog = existsSync(path.join(dir, "CHANGELOG.md")) ? readFileSync(path.join(dir, "CHANGELOG.md"), "utf8") : "";
  sites.push(["CHANGELOG.md newest section", changelog.match(/^## \[?(\d+\.\d+\.\d+[^\]\s]*)/m)?.[1]]);
  return sites;
}

/** Mismatches against the root manifest's version (and the tag, when given): one line each. */
export function checkVersions({ dir = root, tag } = {}) {
  const sites = versionSites(dir);
  const want = sites[0][1];
  const problems = [];
  if (!/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(want ?? "")) problems.push(`package.json: version ${want} is not semver`);
  for (const [where, v] of sites.slice(1)) if (v !== want) problems.push(`${where}: ${v ?? "missing"}, expected ${want}`);
  if (tag !== undefined && tag !== `v${want}`) problems.push(`tag ${tag} does not name version ${want} (expected v${want})`);
  return { version: want, problems };
}

/** The summaries of pending changesets (.changeset/*.md), by bump: { major: [], minor: [], patch: [] }. */
export function pendingChanges(dir = root) {
  const changes = { major: [], minor: [], patch: [] };
  const folder = path.join(dir, ".changeset");
  if (!existsSync(folder)) return changes;
  for (const f of readdirSync(folder)
    .filter((n) => n.endsWith(".md") && n !== "README.md")
    .sort()) {
    const m = readFileSync(path.join(folder, f), "utf8").match(/^---\n([\s\S]*?)\n---\n([\s\S]*)$/);
    if (!m) continue;
    const bumps = [...m[1].matchAll(/:\s*(major|minor|patch)/g)].map((x) => x[1]);
    const bump = ["major", "minor", "patch"].find((b) => bumps.includes(b)) ?? "patch";
    if (m[2].trim()) changes[bump].push(m[2].trim());
  }
  return changes;
}

/** The CHANGELOG with a section for `version` (from `changes`) above the previous ones. */
export function withChangelogSection(changelog, version, changes, date) {
  const headings = { major: "Breaking changes", minor: "Features", patch: "Fixes" };
  const body = Object.entries(changes)
    .filter(([, list]) => list.length)
    .map(([bump, list]) => `### ${headings[bump]}\n\n${list.map((c) => `- ${c.replace(/\n/g, "\n  ")}`).join("\n")}\n`)
    .join("\n");
  const section = `## ${version} (${date})\n\n${body || "No user-visible changes.\n"}\n`;
  const at = changelog.search(/^## /m);
  return at < 0 ? `${changelog.trimEnd()}\n\n${section}` : changelog.slice(0, at) + section + changelog.slice(at);
}

/** Writes `version` to the manifest and the CLI's --version. */
export function writeVersion(version, dir = root) {
  const manifest = path.join(dir, "package.json");
  // A textual edit: the manifest is hand-formatted and other keys must stay as they are.
  writeFileSync(manifest, readFileSync(manifest, "utf8").replace(/^(  "version": )"[^"]*"/m, `$1"${version}"`));
  const cli = path.join(dir, CLI_VERSION_FILE);
  writeFileSync(cli, readFileSync(cli, "utf8").replace(/CLI_VERSION = "[^"]*"/, `CLI_VERSION = "${version}"`));
}

function main(argv) {
  const [cmd, ...rest] = argv;
  const dir = rest.includes("--dir") ? path.resolve(rest[rest.indexOf("--dir") + 1]) : root;
  if (cmd === "check") {
    const tag = rest.includes("--tag") ? rest[rest.indexOf("--tag") + 1] : undefined;
    const { version, problems } = checkVersions({ dir, tag });
    for (const p of problems) console.error(`versions: ${p}`);
    if (problems.length) return 1;
    console.log(`versions: ${version} everywhere${tag ? ` and in tag ${tag}` : ""}`);
    return 0;
  }
  if (cmd === "version") {
    const changes = pendingChanges(dir);
    const bin = path.join(root, "node_modules", "@changesets", "cli", "bin.js");
    const r = spawnSync(process.execPath, [bin, "version"], { cwd: dir, stdio: "inherit" });
    if (r.status !== 0) return r.status ?? 1;
    const { version } = JSON.parse(readFileSync(path.join(dir, "runtime/package.json"), "utf8"));
    writeVersion(version, dir);
    if (dir === root) {
      // The lockfile records each workspace's version: bring it along (no install, no scripts).
      const npm = process.platform === "win32" ? "npm.cmd" : "npm";
      const lock = spawnSync(npm, ["install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund"], {
        cwd: dir,
        stdio: "inherit",
        shell: process.platform === "win32",
      });
      if (lock.status !== 0) return lock.status ?? 1;
    }
    const changelog = path.join(dir, "CHANGELOG.md");
    writeFileSync(changelog, withChangelogSection(readFileSync(changelog, "utf8"), version, changes, new Date().toISOString().slice(0, 10)));
    const { problems } = checkVersions({ dir });
    for (const p of problems) console.error(`versions: ${p}`);
    console.log(`versions: now ${version}; review CHANGELOG.md, commit, then tag v${version}`);
    return problems.length ? 1 : 0;
  }
  console.error("usage: node scripts/release-versions.mjs check [--tag vX.Y.Z] [--dir DIR] | version [--dir DIR]");
  return 2;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) process.exitCode = main(process.argv.slice(2));
