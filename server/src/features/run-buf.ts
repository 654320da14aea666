// Runs the buf binary for the editor's own uses of it (format, lint, breaking), through the
// generator's runner (input on stdin, cancellation) with a deadline and text output.
import { runBuf as run } from "../generator-adapter.js";

export interface BufOutput {
  status: number;
  stdout: string;
  stderr: string;
  /** buf was killed (its deadline passed) rather than finishing. */
  stopped: boolean;
}

/** A buf that hangs (a network fetch of a dependency, say) must not hold the editor's request. */
const DEADLINE_MS = 30_000;

// Not TextDecoder's default, which drops a leading BOM: the text is buf's output as it is.
const utf8 = new TextDecoder("utf-8", { ignoreBOM: true });

export async function runBuf(args: string[], opts: { input?: Uint8Array; cwd?: string; signal?: AbortSignal } = {}): Promise<BufOutput> {
  const r = await run(args, { ...opts, timeout: DEADLINE_MS });
  return {
    status: r.status,
    stdout: utf8.decode(r.stdout),
    stderr: r.signal && !r.stderr ? `buf was stopped (${r.signal}) after ${DEADLINE_MS / 1000} s` : r.stderr,
    stopped: r.signal !== null,
  };
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
