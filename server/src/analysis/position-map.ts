// Maps positions between two versions of a file's text: the text of the last good compile
// and the buffer as it is now. The compiler's spans are about the former; the editor asks
// about the latter. Lines are matched with a Myers diff (jsdiff); a changed line that
// replaced one line keeps its place (a typo on the line of `message Foo` leaves it there).
import { diffArrays } from "diff";
import type { Range } from "./proto-index.js";

export interface Position {
  line: number;
  character: number;
}

export class PositionMap {
  /** Old line → new line, and whether the line's text is unchanged. */
  private readonly oldToNew: ({ line: number; exact: boolean } | undefined)[];
  private readonly newLines: string[];

  private constructor(oldToNew: PositionMap["oldToNew"], newLines: string[]) {
    this.oldToNew = oldToNew;
    this.newLines = newLines;
  }

  static between(oldText: string, newText: string): PositionMap {
    const a = oldText.split("\n");
    const b = newText.split("\n");
    const map: PositionMap["oldToNew"] = new Array(a.length).fill(undefined);
    if (oldText === newText) {
      for (let i = 0; i < a.length; i++) map[i] = { line: i, exact: true };
      return new PositionMap(map, b);
    }
    let i = 0;
    let j = 0;
    const parts = diffArrays(a, b);
    for (let k = 0; k < parts.length; k++) {
      const p = parts[k]!;
      const n = p.count ?? p.value.length;
      if (!p.added && !p.removed) {
        for (let x = 0; x < n; x++) map[i + x] = { line: j + x, exact: true };
        i += n;
        j += n;
      } else if (p.removed) {
        // Removed lines directly replaced by added ones: pair them up, in order.
        const next = parts[k + 1];
        const added = next?.added ? (next.count ?? next.value.length) : 0;
        for (let x = 0; x < Math.min(n, added); x++) map[i + x] = { line: j + x, exact: false };
        i += n;
        if (added) {
          j += added;
          k++;
        }
      } else {
        j += n;
      }
    }
    return new PositionMap(map, b);
  }

  /** A single-line span naming `name` (a declaration's name): where that name is now. */
  mapName(r: Range, name: string): Range | undefined {
    const m = this.oldToNew[r.start.line];
    if (!m || r.end.line !== r.start.line) return undefined;
    if (m.exact) return { start: { line: m.line, character: r.start.character }, end: { line: m.line, character: r.end.character } };
    // The line changed: find the name on it, nearest to where it was.
    const text = this.newLines[m.line] ?? "";
    const re = new RegExp(`(?<![\\w.])${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(?![\\w])`, "g");
    let best: number | undefined;
    for (const hit of text.matchAll(re)) {
      if (best === undefined || Math.abs(hit.index - r.start.character) < Math.abs(best - r.start.character)) best = hit.index;
    }
    if (best === undefined) return undefined;
    return { start: { line: m.line, character: best }, end: { line: m.line, character: best + name.length } };
  }

  /** A whole element's span: from the first of its lines still there to the last one. */
  mapRange(r: Range): Range | undefined {
    let start: Position | undefined;
    for (let l = r.start.line; l <= r.end.line && !start; l++) {
      const m = this.oldToNew[l];
      if (m) start = { line: m.line, character: l === r.start.line && m.exact ? r.start.character : 0 };
    }
    let end: Position | undefined;
    for (let l = r.end.line; l >= r.start.line && !end; l--) {
      const m = this.oldToNew[l];
      if (m) end = { line: m.line, character: l === r.end.line && m.exact ? r.end.character : (this.newLines[m.line] ?? "").length };
    }
    if (!start || !end || end.line < start.line || (end.line === start.line && end.character < start.character)) return undefined;
    return { start, end };
  }
}

/** Items with ranges in `then` moved onto `now`; those whose lines are gone are dropped. */
export function mapRanges<T extends { range: Range }>(items: T[], then: string, now: string): T[] {
  if (then === now) return items;
  const map = PositionMap.between(then, now);
  const out: T[] = [];
  for (const item of items) {
    const range = map.mapRange(item.range);
    if (range) out.push({ ...item, range });
  }
  return out;
}
