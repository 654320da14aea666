// Helpers for tests that apply what the server proposes, as an editor would.
import assert from "node:assert/strict";
import type { TextEdit } from "vscode-languageserver-protocol";

/** 0-based position of the `nth` occurrence of `needle`, plus `shift` characters. */
export function find(text: string, needle: string, shift = 0, nth = 0): { line: number; character: number } {
  let at = -1;
  for (let i = 0; i <= nth; i++) at = text.indexOf(needle, at + 1);
  assert.ok(at >= 0, `text has no ${JSON.stringify(needle)}`);
  const lines = text.slice(0, at + shift).split("\n");
  return { line: lines.length - 1, character: lines[lines.length - 1]!.length };
}

/** Applies LSP text edits to a text (as an editor does: from the last edit backwards). */
export function applyEdits(text: string, edits: TextEdit[]): string {
  const lineStarts = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === "\n") lineStarts.push(i + 1);
  const at = (p: { line: number; character: number }) => (lineStarts[p.line] ?? text.length) + p.character;
  const sorted = [...edits].sort((a, b) => at(b.range.start) - at(a.range.start));
  let out = text;
  for (const e of sorted) out = out.slice(0, at(e.range.start)) + e.newText + out.slice(at(e.range.end));
  return out;
}
