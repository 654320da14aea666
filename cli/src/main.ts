#!/usr/bin/env node
// The `grpcrouter` command. Bundled by esbuild into dist/grpcrouter.js (npm run build -w cli).
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { UsageError, type Command, type Io } from "./command.js";
import { commands } from "./commands/index.js";
import { CLI_VERSION } from "./version.js";

function mainHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    "usage: grpcrouter <command> [options]",
    "",
    "commands:",
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "grpcrouter <command> --help shows a command's options; grpcrouter --version its version.",
    "",
  ].join("\n");
}

function commandHelp(c: Command): string {
  return [`usage: ${c.usage}`, "", c.summary, "", ...c.details, ""].join("\n");
}

/** Runs the CLI; returns the exit code (0 ok, 1 failure, 2 usage). */
export async function main(argv: readonly string[], io: Io): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === "--help" || first === "-h" || first === "help") {
    io.stdout.write(mainHelp());
    return first === undefined ? 2 : 0;
  }
  if (first === "--version" || first === "-v") {
    io.stdout.write(`grpcrouter ${CLI_VERSION}\n`);
    return 0;
  }
  const command = commands.find((c) => c.name === first);
  if (!command) {
    io.stderr.write(
      `grpcrouter: unknown ${first.startsWith("-") ? "option" : "command"} "${first}" (commands: ${commands.map((c) => c.name).join(", ")}; see grpcrouter --help)\n`,
    );
    return 2;
  }
  try {
    const { values, positionals } = parseArgs({
      args: [...rest],
      options: { ...command.options, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: false,
    });
    if (values.help) {
      io.stdout.write(commandHelp(command));
      return 0;
    }
    return await command.run(values as Record<string, string | boolean | undefined>, positionals, io);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (e instanceof UsageError || (typeof code === "string" && code.startsWith("ERR_PARSE_ARGS"))) {
      io.stderr.write(`grpcrouter ${command.name}: ${(e as Error).message.split("\n")[0]} (usage: ${command.usage})\n`);
      return 2;
    }
    io.stderr.write(`grpcrouter ${command.name}: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, cwd: process.cwd() }).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`grpcrouter: ${e instanceof Error ? e.stack : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
