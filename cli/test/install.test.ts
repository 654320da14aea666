// What a team outside this repository gets: the packed tarballs of @grpcrouter/runtime,
// @grpcrouter/generator and @grpcrouter/cli (built by their prepack scripts) installed with
// plain npm into a fresh project, then used as the README says: `npx grpcrouter generate`, a
// strict NodeNext tsc over the generated code and a small program, and that program run with
// plain node, its one unary call answered through the router by a bridged instance. No
// workspace links, no tsx, no development condition: only what npm ships. The steps are
// shared with the release dry run (scripts/release.mjs): see user-project.ts.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { installUserProject, packWorkspaces, registryUnreachable, repoRoot, runUserProgram } from "./user-project.js";

test("the packed packages install from tarballs and work in a project of their own", { timeout: 900_000 }, async () => {
  const work = mkdtempSync(path.join(tmpdir(), "grpcrouter-install-"));
  try {
    // The registry users install from must be reachable: an install test that cannot
    // install has not passed (CI's own `npm ci` needs it too).
    const unreachable = await registryUnreachable(work);
    assert.equal(unreachable, undefined, `npm registry unreachable: ${unreachable}`);

    const packs = path.join(work, "packs");
    const tarballs = await packWorkspaces(packs);
    const { version } = JSON.parse(readFileSync(path.join(repoRoot, "package.json"), "utf8")) as { version: string };
    assert.deepEqual(tarballs, [`grpcrouter-cli-${version}.tgz`, `grpcrouter-generator-${version}.tgz`, `grpcrouter-runtime-${version}.tgz`]);

    const app = path.join(work, "app");
    const generated = await installUserProject(
      app,
      tarballs.map((f) => path.join(packs, f)),
    );
    assert.match(generated, /^grpcrouter: \d+ written, 0 unchanged, 0 removed in gen \(\d+ ms\)$/m);

    assert.match(await runUserProgram(app), /^answer: echo: hello from outside by user-1$/m);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
