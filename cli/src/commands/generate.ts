// `grpcrouter generate`: all phases, then write the output tree (or nothing, on any error).
import path from "node:path";
import { formatDiagnostic, generate, hasErrors, writeOutputs, type GenerateProgress } from "@grpcrouter/generator";
import type { Command, Io } from "../command.js";
import { moduleArgs, moduleDetails, moduleOptions } from "./module-args.js";

export const generateCommand: Command = {
  name: "generate",
  summary: "generate router protos and TypeScript from a proto module",
  usage: "grpcrouter generate [--root DIR] [--out DIR]",
  details: moduleDetails,
  options: moduleOptions,
  async run(values, _positionals, io) {
    const { root, out } = moduleArgs(values, io.cwd);
    const started = performance.now();
    const progress = progressLine(io);
    const result = await generate({ root, out, onProgress: progress.update });
    progress.clear();
    printDiagnostics(result.diagnostics, root, io);
    if (hasErrors(result.diagnostics)) {
      const n = result.diagnostics.filter((d) => d.severity === "error").length;
      io.stderr.write(`grpcrouter: ${n} error${n === 1 ? "" : "s"}; nothing written\n`);
      return 1;
    }
    const w = await writeOutputs(out, result.files);
    const ms = Math.round(performance.now() - started);
    io.stdout.write(
      `grpcrouter: ${w.written.length} written, ${w.unchanged.length} unchanged, ${w.removed.length} removed in ${path.relative(io.cwd, out) || "."} (${ms} ms)\n`,
    );
    return 0;
  },
};

export function printDiagnostics(diagnostics: Parameters<typeof formatDiagnostic>[0][], root: string, io: Io): void {
  for (const d of diagnostics) {
    // Paths relative to the current folder, so terminals and editors can open them.
    const file = d.file ? path.relative(io.cwd, path.join(root, d.file)) : "";
    io.stderr.write(formatDiagnostic({ ...d, file }) + "\n");
  }
}

/** A single self-overwriting status line, only on a terminal. */
export function progressLine(io: Io): { update: (p: GenerateProgress) => void; clear: () => void } {
  if (!io.stderr.isTTY) return { update: () => {}, clear: () => {} };
  let shown = false;
  return {
    update: (p) => {
      shown = true;
      io.stderr.write(`\r\x1b[2K${p.phase}: ${p.message}…`);
    },
    clear: () => {
      if (shown) io.stderr.write("\r\x1b[2K");
    },
  };
}
