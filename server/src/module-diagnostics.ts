// The diagnostics of a module, file by file, as LSP publishes them: the last compile's
// problems, a generation's of the very same buffers, buf lint/breaking findings moved onto
// the text as it is now, and what buf says of buf.yaml or buf.lock on its line there. Pure
// (the caller reads the files and sends the result).
import path from "node:path";
import { DiagnosticSeverity, type Diagnostic as LspDiagnostic } from "vscode-languageserver";
import { mapRanges } from "./analysis/position-map.js";
import { isBufConfig, problemRange } from "./buf-config.js";
import { LINT_SOURCE, type CheckFindings } from "./features/buf-checks.js";
import type { Diagnostic } from "./generator-adapter.js";
import { sameVersions, type Findings } from "./module-states.js";

export interface ModuleProblems {
  root: string;
  /** The workspace folder, which paths in messages are relative to. */
  folder: string;
  compiled: Findings;
  generated?: Findings;
  checks?: CheckFindings[];
  /** false: leave buf's compile errors to another extension (Buf's); ours still show. */
  showCompileErrors: boolean;
  /** The module's open files (absolute); each gets an answer, an empty one when clean. */
  openFiles: string[];
  /** The current text of an open file. */
  openText: (file: string) => string | undefined;
  /** The text of the module's buf.yaml or buf.lock on disk, to place buf's problems in it. */
  configText: (file: string) => string | undefined;
}

const FIRST_CHARACTER = { start: { line: 0, character: 0 }, end: { line: 0, character: 1 } };

export function diagnosticsByFile(p: ModuleProblems): Map<string, LspDiagnostic[]> {
  const byFile = new Map<string, LspDiagnostic[]>();
  const add = (file: string, ...list: LspDiagnostic[]) => byFile.set(file, [...(byFile.get(file) ?? []), ...list]);
  const onOpenFiles = (d: Omit<LspDiagnostic, "range">) => {
    for (const file of p.openFiles) add(file, { ...d, range: FIRST_CHARACTER });
  };
  const shown = (file: string) => path.relative(p.folder, file).split(path.sep).join("/") || path.basename(file);
  /**
   * A problem in buf.yaml or buf.lock: on its line in that file, and named on the open files
   * (that file is seldom open, and their compile or lint waits for it to be fixed).
   */
  const configProblem = (file: string, d: Omit<LspDiagnostic, "range"> & { message: string }, onOpen: Omit<LspDiagnostic, "range">) => {
    add(file, { ...d, range: problemRange(p.configText(file), d.message) });
    onOpenFiles(onOpen);
  };
  // A generation's findings count only for the buffers it read: they neither vanish when the
  // compile of the same save lands after it, nor outlive an edit.
  const diagnostics =
    p.generated && sameVersions(p.generated.versions, p.compiled.versions)
      ? mergeDiagnostics(p.compiled.diagnostics, p.generated.diagnostics)
      : p.compiled.diagnostics;
  for (const d of diagnostics) {
    // Beside the Buf extension, compile errors would show twice: the user turns ours off.
    // What only grpcrouter knows (routing options, generation) always shows.
    if (!p.showCompileErrors && d.source === "buf") continue;
    // A diagnostic about no file in particular (buf missing, say) goes on the open files of
    // the module, at their first line, so it is not lost.
    const file = d.file ? path.resolve(p.root, d.file) : undefined;
    if (file && isBufConfig(file) && d.severity === "error") {
      // toLsp's message type admits markup; buf's is plain text, and problemRange reads it.
      const lsp = { ...toLsp(d), message: d.message };
      configProblem(file, lsp, { ...lsp, message: `${shown(file)}: ${d.message}` });
    } else for (const f of file ? [file] : p.openFiles) add(f, toLsp(d));
  }
  // buf lint and buf breaking findings, on the files they name; a config buf lint cannot run
  // with goes on that file too, and another failure of buf (an unknown git ref) on the open
  // files, like other general problems.
  for (const f of p.checks ?? []) {
    for (const [file, list] of f.byFile) {
      // Found in the last good text: while the user types on (or the file is broken), they
      // move with the edits rather than point at lines that have moved.
      const now = p.openText(file);
      const then = f.texts?.get(file);
      add(file, ...(now !== undefined && then !== undefined ? mapRanges(list, then, now) : list));
    }
    if (f.config) {
      // Invalid in buf.yaml (an error there); on the .proto files, which still compile, a warning like lint's.
      const { file, message } = f.config;
      configProblem(
        file,
        { severity: DiagnosticSeverity.Error, message, source: LINT_SOURCE },
        { severity: DiagnosticSeverity.Warning, message: `buf lint cannot run with ${shown(file)}: ${message}`, source: "grpcrouter" },
      );
    }
    if (f.general) onOpenFiles({ severity: DiagnosticSeverity.Warning, message: f.general, source: "grpcrouter" });
  }
  for (const file of p.openFiles) if (!byFile.has(file)) byFile.set(file, []);
  return byFile;
}

export function toLsp(d: Diagnostic): LspDiagnostic {
  // Ours are 1-based with an exclusive end column; LSP is 0-based.
  const line = Math.max(0, d.line - 1);
  const character = Math.max(0, d.column - 1);
  let endLine = Math.max(line, d.endLine - 1);
  let endCharacter = Math.max(0, d.endColumn - 1);
  if (endLine === line && endCharacter <= character) {
    endLine = line;
    endCharacter = character + 1;
  }
  return {
    range: { start: { line, character }, end: { line: endLine, character: endCharacter } },
    severity: d.severity === "error" ? DiagnosticSeverity.Error : d.severity === "warning" ? DiagnosticSeverity.Warning : DiagnosticSeverity.Information,
    message: d.message,
    source: d.source === "buf" ? "buf" : "grpcrouter",
  };
}

function mergeDiagnostics(a: Diagnostic[], b: Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  const out: Diagnostic[] = [];
  for (const d of [...a, ...b]) {
    const k = `${d.file}:${d.line}:${d.column}:${d.message}`;
    if (!seen.has(k)) {
      seen.add(k);
      out.push(d);
    }
  }
  return out;
}
