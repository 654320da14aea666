// Runs the buf binary for the editor's own uses of it (format, lint, breaking), with input on
// stdin, a deadline and cancellation. The compiler's runs go through the generator.
import { spawn } from "node:child_process";
import { findBuf } from "../generator-adapter.js";

export interface BufOutput {
  status: number;
  stdout: string;
  stderr: string;
}

/** A buf that hangs (a network fetch of a dependency, say) must not hold the editor's request. */
const DEADLINE_MS = 30_000;

export function runBuf(args: string[], opts: { input?: Uint8Array | string; cwd?: string; signal?: AbortSignal } = {}): Promise<BufOutput> {
  return new Promise((resolve, reject) => {
    opts.signal?.throwIfAborted();
    const child = spawn(findBuf(), args, { cwd: opts.cwd, stdio: ["pipe", "pipe", "pipe"], signal: opts.signal, timeout: DEADLINE_MS });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", reject);
    child.stdin.on("error", () => {});
    child.on("close", (code, signal) => {
      const stderr = Buffer.concat(err).toString("utf8");
      resolve({
        status: code ?? 1,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: signal && !stderr ? `buf was stopped (${signal}) after ${DEADLINE_MS / 1000} s` : stderr,
      });
    });
    child.stdin.end(opts.input ?? "");
  });
}

/** buf's text for a failure, without its "Failure: " prefix, on one line. */
export function bufError(o: BufOutput): string {
  return (
    o.stderr
      .trim()
      .replace(/^Failure:\s*/, "")
      .replace(/\s*\n\s*/g, "; ") || `buf exited with ${o.status}`
  );
}
