// Runs the real `grpcrouter` command as a child process, from sources (tsx) or from the bundle.
import { execFile } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const fixturesDir = path.join(repoRoot, "test-fixtures");
const mainTs = path.join(repoRoot, "cli", "src", "main.ts");
const tsx = pathToFileURL(path.join(repoRoot, "node_modules", "tsx", "dist", "loader.mjs")).href;

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `grpcrouter ...args` in `cwd`; `bundle` runs a built dist/grpcrouter.js instead of the sources. */
export function runCli(args: string[], cwd: string, bundle?: string): Promise<CliResult> {
  const argv = bundle ? [bundle, ...args] : ["--conditions=@grpcrouter/source", "--import", tsx, mainTs, ...args];
  return new Promise((resolve) => {
    execFile(process.execPath, argv, { cwd, timeout: 120_000, env: { ...process.env, NO_COLOR: "1" } }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** A temporary copy of a fixture module; `remove` deletes it. */
export function copyFixture(rel: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), "grpcrouter-cli-"));
  cpSync(path.join(fixturesDir, rel), dir, { recursive: true });
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Relative path → content of every file below `dir`. */
export function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    let entries;
    try {
      entries = readdirSync(path.join(dir, rel), { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const child = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(child);
      else out.set(child, readFileSync(path.join(dir, child), "utf8"));
    }
  };
  walk("");
  return out;
}
