// The cheap parts of a release, checked on every test run: one version everywhere (and what
// `npm run version-packages` does to it), and the GitHub workflows as actionlint sees them.
// The expensive part, packing and installing everything, is `npm run release -- --dry-run`.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { repoRoot } from "./run-cli.js";

interface Versions {
  WORKSPACES: string[];
  checkVersions(o?: { dir?: string; tag?: string }): { version: string; problems: string[] };
}
interface Lint {
  workflowFiles(): string[];
  lintWorkflows(dir?: string): { ok: boolean; out: string };
}
const load = async <T>(rel: string) => (await import(pathToFileURL(path.join(repoRoot, rel)).href)) as T;
const readText = (...p: string[]) => readFileSync(path.join(...p), "utf8");

/** A copy of everything that carries a version, laid out as in the repository. */
function versionedCopy(workspaces: string[]): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-versions-"));
  for (const f of ["package.json", "CHANGELOG.md", ".changeset/config.json", "cli/src/version.ts", ...workspaces.map((w) => `${w}/package.json`)]) {
    mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    cpSync(path.join(repoRoot, f), path.join(dir, f));
  }
  return dir;
}

describe("versions", () => {
  let v: Versions;
  const copies: string[] = [];
  before(async () => {
    v = await load<Versions>("scripts/release-versions.mjs");
  });
  after(() => copies.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it("agree in the manifest, every workspace, internal dependencies, the CLI and the CHANGELOG", () => {
    const { version, problems } = v.checkVersions();
    assert.deepEqual(problems, []);
    assert.match(version, /^\d+\.\d+\.\d+/);
    assert.match(readText(repoRoot, "CHANGELOG.md"), new RegExp(`^## ${version.replace(/\./g, "\\.")} \\(\\d{4}-\\d\\d-\\d\\d\\)$`, "m"));
  });

  it("name the file that disagrees, and a tag that names another version", () => {
    const dir = versionedCopy(v.WORKSPACES);
    copies.push(dir);
    const { version } = v.checkVersions();
    const cli = path.join(dir, "cli/src/version.ts");
    writeFileSync(cli, readText(cli).replace(/CLI_VERSION = "[^"]*"/, 'CLI_VERSION = "9.9.9"'));
    const { problems } = v.checkVersions({ dir, tag: "v0.0.1" });
    assert.deepEqual(problems, [
      `cli/src/version.ts CLI_VERSION: 9.9.9, expected ${version}`,
      `tag v0.0.1 does not name version ${version} (expected v${version})`,
    ]);
  });

  it("move together: a minor changeset on one package bumps all, the manifest, the CLI and the CHANGELOG", () => {
    const dir = versionedCopy(v.WORKSPACES);
    copies.push(dir);
    const { version } = v.checkVersions();
    const [major, minor] = version.split(".").map(Number);
    const next = major === 0 ? `0.${minor! + 1}.0` : `${major}.${minor! + 1}.0`;
    writeFileSync(path.join(dir, ".changeset", "brave-new-thing.md"), '---\n"@grpcrouter/runtime": minor\n---\n\nBridges accept a `dns:///` router target.\n');
    const r = spawnSync(process.execPath, [path.join(repoRoot, "scripts/release-versions.mjs"), "version", "--dir", dir], {
      encoding: "utf8",
      timeout: 120_000,
    });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    assert.deepEqual(v.checkVersions({ dir, tag: `v${next}` }).problems, []);
    assert.equal(JSON.parse(readText(dir, "cli/package.json")).version, next);
    assert.match(readText(dir, "cli/src/version.ts"), new RegExp(`CLI_VERSION = "${next}"`));
    const changelog = readText(dir, "CHANGELOG.md");
    assert.match(
      changelog,
      new RegExp(`## ${next.replace(/\./g, "\\.")} \\(\\d{4}-\\d\\d-\\d\\d\\)\\n\\n### Features\\n\\n- Bridges accept a \`dns:///\` router target\\.\\n`),
    );
    assert.ok(changelog.indexOf(`## ${next}`) < changelog.indexOf(`## ${version}`), "the new section comes first");
  });
});

describe("GitHub workflows", () => {
  let lint: Lint;
  let tmp: string;
  before(async () => {
    lint = await load<Lint>("scripts/lint-workflows.mjs");
    tmp = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-workflows-"));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it("pass actionlint", () => {
    const files = lint.workflowFiles().map((f) => path.basename(f));
    assert.deepEqual(files, ["ci.yml", "release.yml"]);
    const { ok, out } = lint.lintWorkflows();
    assert.ok(ok, out);
  });

  it("fail actionlint when broken: the linter really runs", () => {
    const broken = path.join(tmp, "release.yml");
    const text = readText(repoRoot, ".github/workflows/release.yml")
      .replace("needs: build\n", "needs: biuld\n")
      .replace("node-version: 20", "node-versoin: 20");
    writeFileSync(broken, text);
    const { ok, out } = lint.lintWorkflows(tmp);
    assert.equal(ok, false);
    assert.match(out, /release\.yml:\d+:\d+ job "npm" needs job "biuld" which does not exist/);
    assert.match(out, /input "node-versoin" is not defined in action "actions\/setup-node@v4"/);
  });

  it("release on a tag: versions checked, tests, dry run, npm with provenance, every VSIX to both registries, the image", () => {
    const release = readText(repoRoot, ".github/workflows/release.yml");
    assert.match(release, /on:\n  push:\n    tags: \["v\*\.\*\.\*"\]/);
    assert.match(release, /release-versions\.mjs check --tag "\$GITHUB_REF_NAME"/);
    assert.match(release, /run: bash \.ci\/run/);
    assert.match(release, /npm run release -- --dry-run --all/);
    assert.match(release, /id-token: write/);
    assert.match(release, /npm publish "dist-release\/grpcrouter-\$pkg-\$VERSION\.tgz" --provenance --access public/);
    assert.match(release, /vsce publish --packagePath dist-release\/\*\.vsix/);
    assert.match(release, /ovsx@[\d.]+ publish "\$vsix"/);
    assert.match(release, /docker\/build-push-action@v6[\s\S]*platforms: linux\/amd64,linux\/arm64/);
    const ci = readText(repoRoot, ".github/workflows/ci.yml");
    assert.match(ci, /pull_request:/);
    assert.match(ci, /run: bash \.ci\/run/);
    assert.match(readText(repoRoot, ".ci/run"), /npm ci --no-audit --no-fund[\s\S]*\nnpm test\n/);
  });
});
