// Every fixture's output tree is compared with its committed goldens (`npm run
// update-goldens` rewrites them; review the diff). The goldens are also what typecheck.test.ts compiles.
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { checkOutputs, formatDiagnostic, GENERATED_MARKER, generate } from "../src/index.js";
import {
  assertGoldens,
  cleanCases,
  diagnosticsGolden,
  errorCases,
  generateFixture,
  generateInto,
  repoRoot,
  stabilitySteps,
  tempDir,
} from "./support/fixtures.js";

for (const c of cleanCases) {
  test(`${c.name}: output equals the goldens (${c.covers})`, async () => {
    const out = tempDir();
    try {
      const r = await generateFixture(c.root, out.dir);
      assert.deepEqual(r.diagnostics.map(formatDiagnostic), []);
      assert.ok(r.files.length > 0);
      for (const f of r.files) assert.ok(f.content.startsWith(GENERATED_MARKER + "\n"), `${f.path} lacks the generated marker`);
      assertGoldens(c.name, r.files);
    } finally {
      out.remove();
    }
  });
}

for (const c of errorCases) {
  test(`${c.name}: diagnostics equal the golden and no file is produced (${c.covers})`, async () => {
    const out = tempDir();
    try {
      const r = await generateFixture(c.root, out.dir);
      assert.deepEqual(r.files, []);
      assert.ok(r.diagnostics.some((d) => d.severity === "error"));
      assertGoldens(c.name, diagnosticsGolden(r));
    } finally {
      out.remove();
    }
  });
}

test("stability v1 → v2 → v3: each step equals its goldens when generated over the previous output", async () => {
  const out = tempDir();
  try {
    for (const v of stabilitySteps) {
      const files = await generateInto(`stability/${v}`, out.dir);
      assertGoldens(`stability-${v}`, files);
    }
  } finally {
    out.remove();
  }
});

test("the committed example output (examples/echo/gen) is up to date", async () => {
  const root = path.join(repoRoot, "examples", "echo", "proto");
  const out = path.join(repoRoot, "examples", "echo", "gen");
  const r = await generate({ root, out });
  assert.deepEqual(r.diagnostics.map(formatDiagnostic), []);
  const c = await checkOutputs(out, r.files);
  assert.deepEqual({ stale: c.stale, missing: c.missing, extra: c.extra }, { stale: [], missing: [], extra: [] }, "run: npm run generate -w examples/echo");
});
