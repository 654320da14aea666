// The esbuild bundle (cli/dist/grpcrouter.js, what `npm i` users run) works on its own: no
// tsx, no @grpcrouter/source condition, buf found in node_modules, run from a folder outside the
// repository; it generates the example exactly like the sources do.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { repoRoot, runCli, snapshot } from "./run-cli.js";

test("the bundled CLI runs standalone and generates the example like the sources", async () => {
  execFileSync(process.execPath, [path.join(repoRoot, "cli", "scripts", "build.mjs")], { stdio: "pipe" });
  const bundle = path.join(repoRoot, "cli", "dist", "grpcrouter.js");
  assert.match(readFileSync(bundle, "utf8"), /^#!\/usr\/bin\/env node\n/);
  const cwd = mkdtempSync(path.join(tmpdir(), "grpcrouter-bundle-"));
  try {
    const version = await runCli(["--version"], cwd, bundle);
    assert.equal(version.code, 0, version.stderr);
    assert.match(version.stdout, /^grpcrouter \d+\.\d+\.\d+\n$/);

    const example = path.join(repoRoot, "examples", "echo");
    const r = await runCli(["generate", "--root", path.join(example, "proto"), "--out", "out"], cwd, bundle);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^grpcrouter: \d+ written, 0 unchanged, 0 removed in out \(\d+ ms\)\n$/);
    assert.deepEqual(snapshot(path.join(cwd, "out")), snapshot(path.join(example, "gen")));
    const check = await runCli(["check", "--root", path.join(example, "proto"), "--out", "out"], cwd, bundle);
    assert.equal(check.code, 0, check.stdout + check.stderr);
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});
