// An index for a module that does not compile. buf gives no descriptors when any file has an
// error, so hover, definition, outline and lenses would go blank for every file of the module
// (also at start, when a file is broken before any good compile). We compile again with each
// broken file, step by step: at its last good text; then at its current text with the lines
// of its errors blanked (a statement like `int64 units = ;` goes, the rest of the file stays,
// and so do its line numbers); then left out. Files that break because of that (an import of
// a left-out file, a type it declared) take the same steps, round by round.
import path from "node:path";
import type { Compiled, CompileRequest, Diagnostic } from "../generator-adapter.js";

/** Each round is one buf run; a module converges in a few. */
const MAX_ROUNDS = 6;

export interface RecoveryInput {
  root: string;
  out: string;
  /** The unsaved buffers the failed compile used (absolute path → text). */
  overlay: Map<string, string>;
  diagnostics: Diagnostic[];
  /** The last text of a file (absolute) that compiled, if any. */
  lastGood: (file: string) => string | undefined;
  /** The current text of a file that is not in the overlay (read from disk). */
  read: (file: string) => string | undefined;
  signal: AbortSignal;
  compile: (req: CompileRequest) => Promise<Compiled>;
}

type Stage = { kind: "lastGood" } | { kind: "blanked"; lines: Set<number> } | { kind: "excluded" };

/** A compile of the module's healthy part, or undefined when none can be had. */
export async function recoverIndex(input: RecoveryInput): Promise<Compiled | undefined> {
  const overlay = new Map(input.overlay);
  const stages = new Map<string, Stage>();
  const current = (file: string) => input.overlay.get(file) ?? input.read(file);
  let diagnostics = input.diagnostics;
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const errorLines = new Map<string, Set<number>>();
    for (const d of diagnostics) {
      if (d.severity !== "error" || !d.file) continue;
      const file = path.resolve(input.root, d.file);
      const lines = errorLines.get(file) ?? new Set<number>();
      for (let l = d.line - 1; l <= Math.max(d.line, d.endLine) - 1; l++) lines.add(l);
      errorLines.set(file, lines);
    }
    // An error about no file in particular (buf.yaml, buf itself) cannot be worked around.
    if (errorLines.size === 0) return undefined;
    for (const [file, lines] of errorLines) {
      const next = advance(stages.get(file), lines, input.lastGood(file) !== undefined);
      stages.set(file, next);
      const text = current(file);
      if (next.kind === "lastGood") overlay.set(file, input.lastGood(file)!);
      else if (next.kind === "blanked" && text !== undefined) overlay.set(file, blankLines(text, next.lines));
      else {
        stages.set(file, { kind: "excluded" });
        overlay.delete(file);
      }
    }
    input.signal.throwIfAborted();
    const exclude = [...stages].filter(([, s]) => s.kind === "excluded").map(([f]) => f);
    const c = await input.compile({ root: input.root, out: input.out, overlay, exclude, signal: input.signal });
    if (c.descriptors) return c;
    diagnostics = c.diagnostics;
  }
  return undefined;
}

function advance(stage: Stage | undefined, lines: Set<number>, hasLastGood: boolean): Stage {
  if (!stage) return hasLastGood ? { kind: "lastGood" } : { kind: "blanked", lines };
  if (stage.kind === "lastGood") return { kind: "blanked", lines };
  if (stage.kind === "blanked") {
    const more = [...lines].filter((l) => !stage.lines.has(l));
    return more.length ? { kind: "blanked", lines: new Set([...stage.lines, ...more]) } : { kind: "excluded" };
  }
  return stage;
}

/** The text with the given 0-based lines emptied; every other line keeps its number. */
export function blankLines(text: string, lines: Set<number>): string {
  return text
    .split("\n")
    .map((l, i) => (lines.has(i) ? "" : l))
    .join("\n");
}
