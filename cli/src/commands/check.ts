// `grpcrouter check`: exit 0 when the output folder matches what generate would write.
import path from "node:path";
import { checkOutputs, generate, hasErrors } from "@grpcrouter/generator";
import type { Command } from "../command.js";
import { printDiagnostics } from "./generate.js";
import { moduleArgs, moduleDetails, moduleOptions } from "./module-args.js";

export const checkCommand: Command = {
  name: "check",
  summary: "exit 1 when the generated output is missing or out of date",
  usage: "grpcrouter check [--root DIR] [--out DIR]",
  details: moduleDetails,
  options: moduleOptions,
  async run(values, _positionals, io) {
    const { root, out } = moduleArgs(values, io.cwd);
    const result = await generate({ root, out });
    printDiagnostics(result.diagnostics, root, io);
    if (hasErrors(result.diagnostics)) return 1;
    const c = await checkOutputs(out, result.files);
    const where = path.relative(io.cwd, out) || ".";
    if (c.upToDate) {
      io.stdout.write(`grpcrouter: ${where} is up to date (${result.files.length} files)\n`);
      return 0;
    }
    for (const p of c.stale) io.stdout.write(`stale    ${path.join(where, p)}\n`);
    for (const p of c.missing) io.stdout.write(`missing  ${path.join(where, p)}\n`);
    for (const p of c.extra) io.stdout.write(`extra    ${path.join(where, p)}\n`);
    io.stderr.write(`grpcrouter: ${where} is out of date; run grpcrouter generate\n`);
    return 1;
  },
};
