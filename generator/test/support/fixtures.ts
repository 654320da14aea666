// Shared by the generator tests: where the fixtures are, how each is generated, and the
// golden comparison. Tests only ever compare; `npm run update-goldens` (update-goldens.ts)
// is the one way to rewrite the goldens, and it refuses to run in CI.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, mkdirSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { formatDiagnostic, generate, writeOutputs, type GenerateResult, type OutputFile } from "../../src/index.js";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
export const fixturesDir = path.join(repoRoot, "test-fixtures");
export const goldensDir = path.join(repoRoot, "generator", "test", "goldens");

export interface FixtureCase {
  /** Golden folder name. */
  name: string;
  /** Module root, relative to test-fixtures/. */
  root: string;
  /** What the case covers, for test names. */
  covers: string;
}

/** Every fixture that generates cleanly, each compared with its goldens. */
export const cleanCases: FixtureCase[] = [
  { name: "naming", root: "naming/proto", covers: "name collisions, keywords, two services, shared/nested/foreign request types, no buf.yaml" },
  { name: "many", root: "many/proto", covers: "a service with 100 methods" },
  { name: "nopackage", root: "nopackage/proto", covers: "a file without a package" },
  { name: "routing", root: "routing/proto", covers: "valid routing options" },
  { name: "syntaxes", root: "syntaxes/proto", covers: "proto2, proto3 and editions 2023" },
  { name: "bufyaml-v1", root: "bufyaml-v1/proto", covers: "buf.yaml v1 and well-known types" },
  { name: "bufyaml-v2", root: "bufyaml-v2", covers: "buf.yaml v2 with a module path" },
  { name: "editor-workspace", root: "editor-workspace/proto", covers: "imports within the module, service and method options" },
];

/** Fixtures whose generation must fail; their diagnostics are the golden. */
export const errorCases: FixtureCase[] = [
  { name: "broken", root: "broken/proto", covers: "a compile error" },
  { name: "routing-invalid", root: "routing-invalid/proto", covers: "invalid routing options" },
];

/** Fresh empty folder, removed by the returned function. */
export function tempDir(prefix = "grpcrouter-gen-"): { dir: string; remove: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Generates a fixture into `out` (which is read for previous router protos) without writing. */
export function generateFixture(root: string, out: string): Promise<GenerateResult> {
  return generate({ root: path.isAbsolute(root) ? root : path.join(fixturesDir, root), out });
}

/** Generates, asserts there are no diagnostics, writes into `out`. */
export async function generateInto(root: string, out: string): Promise<OutputFile[]> {
  const r = await generateFixture(root, out);
  assert.deepEqual(r.diagnostics.map(formatDiagnostic), [], "no diagnostics expected");
  await writeOutputs(out, r.files);
  return r.files;
}

/** Files below `dir` as relative "/"-paths → content. */
export function readTree(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const child = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(child);
      else out.set(child, readFileSync(path.join(dir, child), "utf8"));
    }
  };
  if (existsSync(dir)) walk("");
  return out;
}

/** Compares `files` with goldens/<name>/: exactly the same set of paths and contents. */
export function assertGoldens(name: string, files: readonly { path: string; content: string }[]): void {
  const dir = path.join(goldensDir, name);
  const golden = readTree(dir);
  assert.ok(golden.size > 0, `no goldens for ${name}: run npm run update-goldens and review the diff`);
  assert.deepEqual(
    files.map((f) => f.path).sort(),
    [...golden.keys()].sort(),
    `${name}: the generated file set differs from goldens/${name} (npm run update-goldens rewrites it)`,
  );
  for (const f of files) {
    assert.equal(f.content, golden.get(f.path), `${name}/${f.path} differs from its golden (npm run update-goldens rewrites it)`);
  }
}

/** Replaces goldens/<name>/ with `files`. Only update-goldens.ts calls this. */
export function writeGoldens(name: string, files: readonly { path: string; content: string }[]): void {
  const dir = path.join(goldensDir, name);
  rmSync(dir, { recursive: true, force: true });
  for (const f of files) {
    mkdirSync(path.dirname(path.join(dir, f.path)), { recursive: true });
    writeFileSync(path.join(dir, f.path), f.content);
  }
}

/** The golden file of an error case: its diagnostics, one a line. */
export function diagnosticsGolden(r: GenerateResult): OutputFile[] {
  return [{ path: "diagnostics.txt", content: r.diagnostics.map(formatDiagnostic).join("\n") + "\n" }];
}

/** The stability steps, each generated over the previous step's output. */
export const stabilitySteps = ["v1", "v2", "v3"] as const;

/** The golden TypeScript files of every case, absolute paths. */
export function goldenTsFiles(): string[] {
  return [...readTree(goldensDir).keys()].filter((p) => p.endsWith(".ts")).map((p) => path.join(goldensDir, p));
}
