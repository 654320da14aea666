// The generated TypeScript of every golden case compiles under `tsc --strict`, in ONE
// TypeScript program (one compiler start for all cases: CPU is scarce on CI machines).
import assert from "node:assert/strict";
import { test } from "node:test";
import ts from "typescript";
import { goldenTsFiles, goldensDir, repoRoot } from "./support/fixtures.js";

test("all golden TypeScript type-checks under strict settings", () => {
  const files = goldenTsFiles();
  assert.ok(files.length > 20, `expected the goldens of every case, found ${files.length} .ts files`);
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    lib: ["lib.es2023.d.ts"],
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    customConditions: ["@grpcrouter/source"],
    verbatimModuleSyntax: true,
    noImplicitOverride: true,
    skipLibCheck: true,
    types: ["node"],
    typeRoots: [`${repoRoot}/node_modules/@types`],
  };
  const program = ts.createProgram(files, options);
  // Only the generated files' own errors: the runtime they import (from sources, through the
  // @grpcrouter/source condition) is type-checked by its own project in `tsc -b`.
  const diagnostics = ts.getPreEmitDiagnostics(program).filter((d) => !d.file || d.file.fileName.startsWith(goldensDir));
  const text = ts.formatDiagnostics(diagnostics, {
    getCanonicalFileName: (f) => f,
    getCurrentDirectory: () => repoRoot,
    getNewLine: () => "\n",
  });
  assert.equal(text, "", "generated code must compile");
});
