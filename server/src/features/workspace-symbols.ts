// Workspace symbols (Ctrl+T): the declarations of the compiled modules' own files, matched
// the way VS Code's own pickers match: the query's characters in order, case-insensitively.
import { pathToFileURL } from "node:url";
import type { SymbolInformation } from "vscode-languageserver";
import type { Snapshot } from "../analysis/snapshot.js";
import { SYMBOL_KINDS } from "./outline.js";

const LIMIT = 500;

export function workspaceSymbols(snaps: Snapshot[], query: string): SymbolInformation[] {
  const q = query.toLowerCase();
  const out: { s: SymbolInformation; score: number }[] = [];
  for (const snap of snaps) {
    for (const d of snap.index.byFqn.values()) {
      const file = snap.compiled.importToFile.get(d.file);
      // Only the module's own files: not the well-known types or grpcrouter's options.
      if (!file || !d.nameRange) continue;
      const score = match(q, d.name.toLowerCase(), d.fqn.toLowerCase());
      if (score === undefined) continue;
      const container = d.fqn.slice(0, Math.max(0, d.fqn.length - d.name.length - 1));
      out.push({
        s: { name: d.name, kind: SYMBOL_KINDS[d.kind], containerName: container, location: { uri: pathToFileURL(file).href, range: d.nameRange } },
        score,
      });
    }
  }
  return out
    .sort((a, b) => a.score - b.score || a.s.name.localeCompare(b.s.name))
    .slice(0, LIMIT)
    .map((x) => x.s);
}

/** Lower is better: a name that starts with the query, then contains it, then has its letters in order. */
function match(q: string, name: string, fqn: string): number | undefined {
  if (!q) return 3;
  if (name.startsWith(q)) return 0;
  if (name.includes(q)) return 1;
  if (fqn.includes(q)) return 2;
  let i = 0;
  for (const c of name) if (c === q[i]) i++;
  return i === q.length ? 3 : undefined;
}
