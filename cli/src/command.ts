// The shape of a CLI subcommand. main.ts dispatches through a table of these, so adding
// `serve` or `bridge` is one new file and one line in commands/index.ts.
import type { ParseArgsConfig } from "node:util";

export interface Io {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  cwd: string;
}

export type OptionSpecs = NonNullable<ParseArgsConfig["options"]>;

export interface Command {
  name: string;
  /** One line for `grpcrouter --help`. */
  summary: string;
  /** The usage line, e.g. "grpcrouter generate [--root DIR] [--out DIR]". */
  usage: string;
  /** Lines explaining each option, for `grpcrouter <name> --help`. */
  details: string[];
  options: OptionSpecs;
  /** Exit code: 0 ok, 1 failure (diagnostics, stale output), 2 usage. */
  run(values: Record<string, string | boolean | undefined>, positionals: string[], io: Io): Promise<number>;
}

/** A problem with how the command was called: printed as one line, exit 2. */
export class UsageError extends Error {}

/** A --`name` of seconds (> 0), `fallback` when absent. */
export function seconds(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (typeof value !== "string" || !Number.isFinite(n) || n <= 0) throw new UsageError(`--${name} ${String(value)}: expected a number of seconds`);
  return n;
}

/** Resolves on the first Ctrl-C or SIGTERM: how a long-running command (serve, bridge) is asked to stop. */
export function waitForSignal(): Promise<void> {
  return new Promise((resolve) => {
    const stop = () => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      resolve();
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
}
