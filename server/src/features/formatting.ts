// Document and range formatting with the bundled `buf format`. buf formats whole files, so a
// range request formats the file and keeps the changed hunks that touch the range. buf 1.x
// formats a file with syntax errors without complaint and may drop tokens on the way
// (`string y = ;` comes back as `string y;`), so a result whose tokens differ from the
// input's is refused: the document is never mangled, and the user is told why.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { diffArrays } from "diff";
import type { Range, TextEdit } from "vscode-languageserver";
import { tokenize, type Token } from "../analysis/tokenizer.js";
import { bufError, runBuf } from "./run-buf.js";

export type FormatResult = { ok: true; edits: TextEdit[] } | { ok: false; reason: string };

/** The whole file as `buf format` prints it, or why it cannot be formatted. */
export async function bufFormat(text: string, fileName = "file.proto", signal?: AbortSignal): Promise<{ text: string } | { reason: string }> {
  // buf format reads files, not stdin: a private folder holds a copy of the buffer.
  const dir = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-format-"));
  const base = path.basename(fileName).endsWith(".proto") ? path.basename(fileName) : "file.proto";
  try {
    writeFileSync(path.join(dir, base), text);
    const r = await runBuf(["format", base], { cwd: dir, ...(signal ? { signal } : {}) });
    if (r.status !== 0) return { reason: `buf format failed: ${bufError(r)}` };
    const lost = firstLostToken(text, r.stdout);
    if (lost) return { reason: `not formatted: buf format would change ${lost}; fix the syntax error there first` };
    return { text: r.stdout };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Where the formatted text's tokens part from the input's, as "`=` at line 2", or undefined
 * when they are the same. Empty statements (`;`) and separators (`,`) buf may drop are not
 * counted, and imports are compared as a set (buf sorts them).
 */
export function firstLostToken(before: string, after: string): string | undefined {
  const a = significant(before);
  const b = significant(after);
  const importsOf = (x: typeof a) => x.imports.map((i) => i.map((t) => t.text).join(" ")).sort();
  const [ia, ib] = [importsOf(a), importsOf(b)];
  for (let i = 0; i < Math.max(ia.length, ib.length); i++) {
    if (ia[i] !== ib[i]) return `the imports (${ia[i] ?? ib[i]})`;
  }
  for (let i = 0; i < Math.max(a.rest.length, b.rest.length); i++) {
    if (a.rest[i]?.text === b.rest[i]?.text) continue;
    const t = a.rest[i] ?? a.rest[a.rest.length - 1];
    return t ? `\`${t.text}\` at line ${t.line + 1}` : "the file";
  }
  return undefined;
}

/** The tokens that carry meaning: import statements apart, the rest in order. */
function significant(text: string): { imports: Token[][]; rest: Token[] } {
  const imports: Token[][] = [];
  const rest: Token[] = [];
  const tokens = tokenize(text);
  for (let k = 0; k < tokens.length; k++) {
    const t = tokens[k]!;
    const statementStart = k === 0 || /^[;{}]$/.test(tokens[k - 1]!.text);
    if (t.text === "import" && statementStart) {
      const stmt: Token[] = [];
      while (k < tokens.length && tokens[k]!.text !== ";") stmt.push(tokens[k++]!);
      imports.push(stmt);
      continue;
    }
    if (t.text !== ";" && t.text !== ",") rest.push(t);
  }
  return { imports, rest };
}

/** Edits that turn `before` into `after`, one per changed run of lines (cursor-friendly). */
export function lineEdits(before: string, after: string, within?: Range): TextEdit[] {
  const a = before.split("\n");
  const b = after.split("\n");
  const edits: TextEdit[] = [];
  let line = 0;
  const parts = diffArrays(a, b);
  for (let k = 0; k < parts.length; k++) {
    const p = parts[k]!;
    const n = p.count ?? p.value.length;
    if (!p.added && !p.removed) {
      line += n;
      continue;
    }
    let removed = 0;
    let added: string[] = [];
    if (p.removed) {
      removed = n;
      const next = parts[k + 1];
      if (next?.added) {
        added = next.value;
        k++;
      }
    } else {
      added = p.value;
    }
    const start = line;
    const end = line + removed;
    line = end;
    // Within a range request, keep the hunks that touch it (an insertion touches the lines around it).
    if (within && !(removed > 0 ? start <= within.end.line && end - 1 >= within.start.line : start >= within.start.line && start <= within.end.line + 1))
      continue;
    edits.push({
      range: { start: { line: start, character: 0 }, end: { line: end, character: 0 } },
      newText: added.map((l) => `${l}\n`).join(""),
    });
  }
  return fixLastLine(edits, a);
}

/** diffArrays works on lines; an edit that reaches past the last line must not add a newline there. */
function fixLastLine(edits: TextEdit[], lines: string[]): TextEdit[] {
  const lineCount = lines.length;
  // The split of "x\n" is ["x", ""]: the last "line" is the empty text after the final newline.
  // An edit ending at lineCount would address a line that does not exist; clamp it.
  return edits.map((e) => {
    if (e.range.end.line < lineCount) return e;
    return {
      range: { start: e.range.start, end: { line: lineCount - 1, character: lines[lineCount - 1]!.length } },
      newText: e.newText.endsWith("\n") ? e.newText.slice(0, -1) : e.newText,
    };
  });
}

export async function formatDocument(text: string, fileName: string, range?: Range, signal?: AbortSignal): Promise<FormatResult> {
  const r = await bufFormat(text, fileName, signal);
  if ("reason" in r) return { ok: false, reason: r.reason };
  return { ok: true, edits: lineEdits(text, r.text, range) };
}
