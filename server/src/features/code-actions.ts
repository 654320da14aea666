// Code actions on imports: add the import an unresolved type needs (a file of the module or a
// well-known type), remove the imports nothing uses, and organize them (sorted, once each).
import { CodeActionKind, type CodeAction, type CodeActionContext, type Diagnostic, type Range, type TextEdit } from "vscode-languageserver";
import { allTypes, importEdit, importersOf, nameFrom, resolveAnywhere, unusedImports, visibleFiles } from "../analysis/imports.js";
import { importsOf, nameUses, tokenRange, type ImportStatement } from "../analysis/names.js";
import type { Snapshot } from "../analysis/snapshot.js";
import { tokenize, type Token } from "../analysis/tokenizer.js";

export const REMOVE_UNUSED_IMPORTS = `${CodeActionKind.Source}.removeUnusedImports`;

export const CODE_ACTION_KINDS = [CodeActionKind.QuickFix, CodeActionKind.SourceOrganizeImports, REMOVE_UNUSED_IMPORTS];

/** How many "import X and use it" fixes an unknown short name gets at most. */
const MAX_GUESSES = 5;

export function codeActions(snap: Snapshot | undefined, file: string, uri: string, text: string, range: Range, context: CodeActionContext): CodeAction[] {
  const tokens = tokenize(text);
  const actions = [...addImportFixes(snap, file, uri, tokens, range, context.diagnostics)];
  if (snap) actions.push(...importCleanups(snap, uri, text, tokens, range));
  const only = context.only;
  return only?.length ? actions.filter((a) => only.some((k) => a.kind === k || a.kind?.startsWith(`${k}.`))) : actions;
}

function overlaps(a: Range, b: Range): boolean {
  const before = (x: Range["start"], y: Range["start"]) => x.line < y.line || (x.line === y.line && x.character < y.character);
  return !before(a.end, b.start) && !before(b.end, a.start);
}

function addImportFixes(snap: Snapshot | undefined, file: string, uri: string, tokens: Token[], range: Range, diagnostics: Diagnostic[]): CodeAction[] {
  const self = snap?.importPathOf(file);
  const visible = visibleFiles(self, tokens);
  const pkg = packageOf(tokens);
  const out = new Map<string, CodeAction>();
  // A file that imports this one cannot be imported back: that would be a cycle.
  const cyclic = snap && self ? importersOf(snap, self) : new Set<string>();
  for (const use of nameUses(tokens)) {
    if (use.declares !== undefined) continue;
    const r = tokenRange(use.token);
    const about = diagnostics.filter((d) => overlaps(d.range, r));
    if (!about.length && !overlaps(range, r)) continue;
    const name = use.token.text;
    const found = resolveAnywhere(snap, name, use.scope);
    if (found) {
      if (visible.has(found.file) || found.file === self || cyclic.has(found.file)) continue;
      const title = `Add import "${found.file}"`;
      out.set(title, {
        title,
        kind: CodeActionKind.QuickFix,
        diagnostics: about,
        isPreferred: true,
        edit: { changes: { [uri]: [importEdit(tokens, found.file)] } },
      });
      continue;
    }
    // Not even resolvable: a short name of a type elsewhere (`Timestamp`). Offer to import it
    // and write the name that resolves.
    const short = name.replace(/^\./, "");
    const guesses = allTypes(snap)
      .filter((d) => (d.fqn === short || d.fqn.endsWith(`.${short}`)) && !cyclic.has(d.file))
      .slice(0, MAX_GUESSES);
    for (const d of guesses) {
      const written = nameFrom(pkg, d);
      const needsImport = !visible.has(d.file) && d.file !== self;
      const title = needsImport ? `Import "${d.file}" and use ${written}` : `Change to ${written}`;
      const edits: TextEdit[] = [{ range: r, newText: written }];
      if (needsImport) edits.unshift(importEdit(tokens, d.file));
      out.set(title, { title, kind: CodeActionKind.QuickFix, diagnostics: about, edit: { changes: { [uri]: edits } } });
    }
  }
  return [...out.values()];
}

function packageOf(tokens: Token[]): string {
  const k = tokens.findIndex((t, i) => t.text === "package" && (i === 0 || /[;}]/.test(tokens[i - 1]!.text)));
  return k >= 0 ? (tokens[k + 1]?.text ?? "") : "";
}

function importCleanups(snap: Snapshot, uri: string, text: string, tokens: Token[], range: Range): CodeAction[] {
  const out: CodeAction[] = [];
  const unused = unusedImports(snap, tokens);
  for (const imp of unused) {
    if (!overlaps(range, imp.range)) continue;
    out.push({
      title: `Remove unused import "${imp.path}"`,
      kind: CodeActionKind.QuickFix,
      edit: { changes: { [uri]: [{ range: wholeLines(text, imp), newText: "" }] } },
    });
  }
  if (unused.length) {
    out.push({
      title: unused.length === 1 ? "Remove the unused import" : `Remove ${unused.length} unused imports`,
      kind: REMOVE_UNUSED_IMPORTS,
      edit: { changes: { [uri]: unused.map((imp) => ({ range: wholeLines(text, imp), newText: "" })) } },
    });
  }
  const organized = organize(text, tokens, new Set(unused.map((i) => i.path)));
  if (organized) out.push({ title: "Organize imports", kind: CodeActionKind.SourceOrganizeImports, edit: { changes: { [uri]: [organized] } } });
  return out;
}

/** The statement's range, grown to its whole line(s) when nothing else is on them. */
function wholeLines(text: string, imp: ImportStatement): Range {
  const lineStart = text.lastIndexOf("\n", imp.start - 1) + 1;
  const nl = text.indexOf("\n", imp.end);
  const lineEnd = nl < 0 ? text.length : nl;
  if (text.slice(lineStart, imp.start).trim() || text.slice(imp.end, lineEnd).trim()) return imp.range;
  return { start: { line: imp.range.start.line, character: 0 }, end: nl < 0 ? imp.range.end : { line: imp.range.end.line + 1, character: 0 } };
}

/**
 * The imports sorted by path, each once, the unused ones dropped. Only when they form one
 * block (nothing but blank lines between them): comments between imports are the user's, and
 * we would not know where they belong.
 */
function organize(text: string, tokens: Token[], unused: Set<string>): TextEdit | undefined {
  const imports = importsOf(tokens);
  if (!imports.length) return undefined;
  const first = imports[0]!;
  const last = imports[imports.length - 1]!;
  let between = text.slice(first.start, last.end);
  for (const imp of [...imports].reverse()) between = between.slice(0, imp.start - first.start) + between.slice(imp.end - first.start);
  if (between.trim()) return undefined;
  const byPath = new Map<string, ImportStatement>();
  for (const imp of imports) {
    if (unused.has(imp.path) && !imp.modifier) continue;
    const had = byPath.get(imp.path);
    if (!had || (imp.modifier === "public" && had.modifier !== "public")) byPath.set(imp.path, imp);
  }
  const lines = [...byPath.values()]
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    .map((i) => `import ${i.modifier ? `${i.modifier} ` : ""}"${i.path}";`);
  const newText = lines.join("\n");
  if (newText === text.slice(first.start, last.end)) return undefined;
  if (!lines.length) {
    const range = wholeLines(text, { ...first, end: last.end, range: { start: first.range.start, end: last.range.end } });
    return { range, newText: "" };
  }
  return { range: { start: first.range.start, end: last.range.end }, newText };
}
