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
