// `npm run update-goldens`: regenerates every fixture and rewrites generator/test/goldens/
// with the output, for a developer to review as a diff and commit. Tests never write
// goldens, so no environment variable can turn a golden test into a pass; and this refuses
// to run in CI, where goldens are only ever compared.
import { formatDiagnostic } from "../../src/index.js";
import { cleanCases, diagnosticsGolden, errorCases, generateFixture, generateInto, stabilitySteps, tempDir, writeGoldens } from "./fixtures.js";

if (process.env.CI && process.env.CI !== "false" && process.env.CI !== "0") {
  console.error("update-goldens refuses to run in CI (CI is set): goldens are compared there, never rewritten.");
  process.exit(1);
}

const out = tempDir();
try {
  for (const c of cleanCases) {
    const r = await generateFixture(c.root, out.dir);
    if (r.diagnostics.length > 0) throw new Error(`${c.name} (${c.root}) must generate cleanly:\n${r.diagnostics.map(formatDiagnostic).join("\n")}`);
    writeGoldens(c.name, r.files);
    console.log(`goldens/${c.name}: ${r.files.length} files`);
  }
  for (const c of errorCases) {
    const r = await generateFixture(c.root, out.dir);
    if (r.files.length > 0 || !r.diagnostics.some((d) => d.severity === "error")) throw new Error(`${c.name} (${c.root}) must fail to generate`);
    writeGoldens(c.name, diagnosticsGolden(r));
    console.log(`goldens/${c.name}: ${r.diagnostics.length} diagnostics`);
  }
  const stability = tempDir();
  try {
    for (const v of stabilitySteps) {
      const files = await generateInto(`stability/${v}`, stability.dir);
      writeGoldens(`stability-${v}`, files);
      console.log(`goldens/stability-${v}: ${files.length} files`);
    }
  } finally {
    stability.remove();
  }
} finally {
  out.remove();
}
console.log("Goldens rewritten: review `git diff generator/test/goldens` before committing.");
