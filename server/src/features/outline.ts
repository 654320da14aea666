// Document symbols (the outline) and the code lenses over services, from the last good
// compile's descriptors and source spans.
import { SymbolKind, type CodeLens, type DocumentSymbol } from "vscode-languageserver";
import type { Decl, Range } from "../analysis/proto-index.js";
import type { Snapshot } from "../analysis/snapshot.js";
import type { InstanceCounts } from "../router-state.js";

/** The symbol kind of each kind of declaration (the outline's and Ctrl+T's). */
export const SYMBOL_KINDS: Record<Decl["kind"], SymbolKind> = {
  message: SymbolKind.Struct,
  enum: SymbolKind.Enum,
  service: SymbolKind.Interface,
  method: SymbolKind.Method,
  field: SymbolKind.Field,
  enumValue: SymbolKind.EnumMember,
  oneof: SymbolKind.Field,
};

export function documentSymbols(snap: Snapshot, file: string): DocumentSymbol[] {
  const imp = snap.importPathOf(file);
  const entry = imp ? snap.index.files.get(imp) : undefined;
  if (!entry) return [];
  const toSymbol = (d: Decl): DocumentSymbol | undefined => {
    const range = d.range ?? d.nameRange;
    if (!range) return undefined;
    return {
      name: d.name,
      detail: d.kind === "method" ? d.detail : d.kind === "field" ? d.detail : "",
      kind: SYMBOL_KINDS[d.kind],
      range,
      selectionRange: d.nameRange && within(d.nameRange, range) ? d.nameRange : range,
      children: d.children.map(toSymbol).filter((s): s is DocumentSymbol => !!s),
    };
  };
  return entry.decls.map(toSymbol).filter((s): s is DocumentSymbol => !!s);
}

function within(inner: Range, outer: Range): boolean {
  const le = (a: Range["start"], b: Range["start"]) => a.line < b.line || (a.line === b.line && a.character <= b.character);
  return le(outer.start, inner.start) && le(inner.end, outer.end);
}

/** Command ids the extension registers; the lenses only name them. */
export const COMMANDS = {
  generate: "grpcrouter.generate",
  startRouter: "grpcrouter.startRouter",
  showOutput: "grpcrouter.showOutput",
} as const;

export function codeLenses(snap: Snapshot, file: string, uri: string, counts: InstanceCounts): CodeLens[] {
  const imp = snap.importPathOf(file);
  const entry = imp ? snap.index.files.get(imp) : undefined;
  if (!entry) return [];
  const lenses: CodeLens[] = [];
  for (const d of entry.decls) {
    if (d.kind !== "service") continue;
    const range = d.nameRange ?? d.range;
    if (!range) continue;
    const at = { start: range.start, end: range.start };
    lenses.push({ range: at, command: { title: "Generate", command: COMMANDS.generate, arguments: [uri] } });
    const running = counts.routerRunning();
    if (!running) {
      lenses.push({ range: at, command: { title: "Start router", command: COMMANDS.startRouter, arguments: [uri] } });
    } else {
      const n = counts.instances(d.fqn);
      const title = n === undefined ? "router running" : `${n} instance${n === 1 ? "" : "s"} registered`;
      lenses.push({ range: at, command: { title, command: COMMANDS.showOutput, arguments: [] } });
    }
  }
  return lenses;
}
