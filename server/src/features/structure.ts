// What the editor needs about a buffer's shape, read from its text alone (so it works while
// the file does not compile): folding ranges, selection ranges, and links on import paths.
import { pathToFileURL } from "node:url";
import { FoldingRangeKind, type DocumentLink, type FoldingRange, type Range, type SelectionRange } from "vscode-languageserver";
import { importsOf, partsOf } from "../analysis/names.js";
import type { Snapshot } from "../analysis/snapshot.js";
import { offsetAt, tokenize, type Position, type Token } from "../analysis/tokenizer.js";

export function foldingRanges(text: string): FoldingRange[] {
  const tokens = tokenize(text);
  const out: FoldingRange[] = [];
  const open: Token[] = [];
  for (const t of tokens) {
    if (t.kind !== "punct") continue;
    if (t.text === "{" || t.text === "[") open.push(t);
    else if (t.text === "}" || t.text === "]") {
      const o = open.pop();
      // The closing line stays visible, as in every VS Code language.
      if (o && t.line - 1 > o.line) out.push({ startLine: o.line, endLine: t.line - 1 });
    }
  }
  const imports = importsOf(tokens);
  for (let i = 0; i < imports.length; ) {
    let j = i;
    while (j + 1 < imports.length && imports[j + 1]!.range.start.line === imports[j]!.range.end.line + 1) j++;
    if (j > i) out.push({ startLine: imports[i]!.range.start.line, endLine: imports[j]!.range.end.line, kind: FoldingRangeKind.Imports });
    i = j + 1;
  }
  for (const c of commentBlocks(text)) if (c.endLine > c.startLine) out.push({ ...c, kind: FoldingRangeKind.Comment });
  return out.sort((a, b) => a.startLine - b.startLine);
}

/** Runs of `//` lines and `/* … *\/` comments, by line. Strings are skipped: a `//` in one is no comment. */
function commentBlocks(text: string): { startLine: number; endLine: number }[] {
  const out: { startLine: number; endLine: number }[] = [];
  let line = 0;
  let lastLineComment = -2;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === "\n") line++;
    else if (c === '"' || c === "'") {
      for (i++; i < text.length && text[i] !== c && text[i] !== "\n"; i++) if (text[i] === "\\") i++;
      if (text[i] === "\n") line++;
    } else if (c === "/" && text[i + 1] === "/") {
      const lineStart = text.lastIndexOf("\n", i - 1) + 1;
      const alone = text.slice(lineStart, i).trim() === "";
      if (alone && lastLineComment === line - 1 && out.length) out[out.length - 1]!.endLine = line;
      else if (alone) out.push({ startLine: line, endLine: line });
      if (alone) lastLineComment = line;
      while (i < text.length && text[i] !== "\n") i++;
      i--;
    } else if (c === "/" && text[i + 1] === "*") {
      const start = line;
      for (i += 2; i < text.length && !(text[i] === "*" && text[i + 1] === "/"); i++) if (text[i] === "\n") line++;
      i++;
      out.push({ startLine: start, endLine: line });
    }
  }
  return out;
}

export function documentLinks(snap: Snapshot | undefined, text: string): DocumentLink[] {
  if (!snap) return [];
  const links: DocumentLink[] = [];
  for (const imp of importsOf(tokenize(text))) {
    const file = snap.fileOf(imp.path) ?? snap.printedFile(imp.path)?.file;
    if (file) links.push({ range: imp.pathRange, target: pathToFileURL(file).href, tooltip: `Open ${imp.path}` });
  }
  return links;
}

/**
 * Growing selections at each position: a part of a dotted name, the whole name, the
 * statement, a block's inside, the block with its head, outward to the whole file.
 */
export function selectionRanges(text: string, positions: Position[]): SelectionRange[] {
  const tokens = tokenize(text);
  const spans = statementSpans(tokens);
  const whole = { start: { line: 0, character: 0 }, end: positionAt(text, text.length) };
  return positions.map((pos) => {
    const offset = offsetAt(text, pos);
    const ranges: [number, number][] = [];
    const token = tokens.find((t) => t.offset <= offset && offset <= t.end && t.kind !== "punct");
    if (token) {
      if (token.kind === "ident") for (const p of partsOf(token)) if (p.offset <= offset && offset <= p.end) ranges.push([p.offset, p.end]);
      if (token.kind === "string" && token.end - token.offset > 2) ranges.push([token.offset + 1, token.end - 1]);
      ranges.push([token.offset, token.end]);
    }
    for (const [a, b] of spans) if (a <= offset && offset <= b) ranges.push([a, b]);
    // Innermost first; each must hold the one before it, strictly.
    ranges.sort((x, y) => x[1] - x[0] - (y[1] - y[0]));
    let chain: SelectionRange = { range: whole };
    const kept: [number, number][] = [];
    for (const r of ranges) {
      const prev = kept[kept.length - 1];
      if (prev && (r[0] > prev[0] || r[1] < prev[1] || (r[0] === prev[0] && r[1] === prev[1]))) continue;
      kept.push(r);
    }
    for (const [a, b] of kept.reverse()) {
      if (a === 0 && b === text.length) continue;
      chain = { range: { start: positionAt(text, a), end: positionAt(text, b) }, parent: chain };
    }
    return chain;
  });
}

/** Offsets of every statement (through its `;` or `}`) and of every block's inside. */
function statementSpans(tokens: Token[]): [number, number][] {
  const spans: [number, number][] = [];
  const starts: number[] = [];
  const opens: number[] = [];
  let start: number | undefined;
  for (const t of tokens) {
    start ??= t.offset;
    if (t.text === "{" && t.kind === "punct") {
      starts.push(start);
      opens.push(t.end);
      start = undefined;
    } else if (t.text === "}" && t.kind === "punct") {
      const s = starts.pop();
      const o = opens.pop();
      if (o !== undefined && o < t.offset) spans.push([o, t.offset]);
      if (s !== undefined) spans.push([s, t.end]);
      start = undefined;
    } else if (t.text === ";" && t.kind === "punct") {
      spans.push([start, t.end]);
      start = undefined;
    }
  }
  return spans;
}

function positionAt(text: string, offset: number): Range["start"] {
  let line = 0;
  let lineStart = 0;
  for (let i = text.indexOf("\n"); i >= 0 && i < offset; i = text.indexOf("\n", i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, character: offset - lineStart };
}
