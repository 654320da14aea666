// Locates and runs the buf binary. It ships in buf's per-platform npm packages; we resolve it
// directly because npm 11 holds back @bufbuild/buf's install script, which would link it.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

// The one table of buf's npm platform packages, keyed by `${process.platform}-${process.arch}`
// (which are also VS Code's target names); the build scripts read the same file.
import platformPackages from "./buf-platforms.json" with { type: "json" };

/** The npm package that carries buf for a platform (`linux-x64`, `darwin-arm64`, …). */
export function bufPackageFor(platform: string): string | undefined {
  return (platformPackages as Record<string, string>)[platform];
}

let cached: string | undefined;

/**
 * The path of the buf binary: $GRPCROUTER_BUF if set, else `bin/buf` beside this module's
 * file (a self-contained bundle ships it there: the VSIX and the container image), else the
 * binary of the platform package resolved from this module (sources, the npm CLI whose
 * node_modules holds it), else from the current directory.
 */
export function findBuf(): string {
  if (cached) return cached;
  const fromEnv = process.env.GRPCROUTER_BUF;
  if (fromEnv) return (cached = fromEnv);
  const exe = process.platform === "win32" ? "buf.exe" : "buf";
  const beside = path.join(path.dirname(fileURLToPath(import.meta.url)), "bin", exe);
  if (existsSync(beside)) return (cached = beside);
  const pkg = bufPackageFor(`${process.platform}-${process.arch}`);
  if (!pkg) throw new Error(`grpcrouter: no buf binary for ${process.platform}-${process.arch}`);
  const bases = [import.meta.url, path.join(process.cwd(), "package.json")];
  for (const base of bases) {
    try {
      const dir = path.dirname(createRequire(base).resolve(`${pkg}/package.json`));
      const bin = path.join(dir, "bin", exe);
      if (existsSync(bin)) return (cached = bin);
    } catch {
      // not resolvable from this base; try the next
    }
  }
  throw new Error(`grpcrouter: cannot find the buf binary: install ${pkg} (npm i @bufbuild/buf) or set GRPCROUTER_BUF`);
}

export interface BufResult {
  status: number;
  stdout: Uint8Array;
  stderr: string;
  /** The signal that ended buf (its `timeout` passed, say), or null when it exited. */
  signal: NodeJS.Signals | null;
}

export interface RunBufOptions {
  /** buf's stdin. */
  input?: Uint8Array;
  signal?: AbortSignal;
  cwd?: string;
  /** Milliseconds after which buf is killed (SIGTERM); none by default. */
  timeout?: number;
}

/** Runs buf with `input` on stdin; rejects only when buf cannot run or `signal` aborts. */
export function runBuf(args: string[], opts: RunBufOptions = {}): Promise<BufResult> {
  return new Promise((resolve, reject) => {
    opts.signal?.throwIfAborted();
    const child = spawn(findBuf(), args, { stdio: ["pipe", "pipe", "pipe"], signal: opts.signal, cwd: opts.cwd, timeout: opts.timeout });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", reject);
    // buf may exit before reading all of stdin (e.g. on a usage error); that is not our error.
    child.stdin.on("error", () => {});
    child.on("close", (code, signal) => {
      resolve({ status: code ?? 1, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString("utf8"), signal });
    });
    child.stdin.end(opts.input ?? new Uint8Array());
  });
}
