// Imports as the editor sees them: which files a buffer imports now, which declarations it
// can see, where a new import goes, and which imports nothing uses. Shared by the code
// actions and by completion that imports what it inserts.
import type { TextEdit } from "vscode-languageserver";
import { importsOf, nameUses, resolveParts, type ImportStatement } from "./names.js";
import type { Decl, ProtoIndex } from "./proto-index.js";
import type { Snapshot } from "./snapshot.js";
import type { Token } from "./tokenizer.js";
import { wellKnownIndex } from "./well-known.js";

/** Import paths a buffer sees declarations of: its own and those it imports now. */
export function visibleFiles(self: string | undefined, tokens: Token[]): Set<string> {
  const out = new Set(importsOf(tokens).map((i) => i.path));
  if (self) out.add(self);
  return out;
}

/** The indexes to look names up in: the module's compile, then the well-known types. */
export function indexesOf(snap: Snapshot | undefined): ProtoIndex[] {
  return snap ? [snap.index, wellKnownIndex()] : [wellKnownIndex()];
}

/** Resolves a name from a scope as protoc does, in the module and the well-known types. */
export function resolveAnywhere(snap: Snapshot | undefined, name: string, scope: string): Decl | undefined {
  for (const index of indexesOf(snap)) {
    const d = index.resolve(name, scope);
    if (d) return d;
  }
  return undefined;
}

/** Every message and enum the module's compile and the well-known types declare, once each. */
export function allTypes(snap: Snapshot | undefined): Decl[] {
  const seen = new Set<string>();
  const out: Decl[] = [];
  for (const index of indexesOf(snap)) {
    for (const d of index.byFqn.values()) {
      if ((d.kind === "message" || d.kind === "enum") && !seen.has(d.fqn)) {
        seen.add(d.fqn);
        out.push(d);
      }
    }
  }
  return out;
}

/**
 * The edit that adds `import "path";`: among the imports in sorted place when there are
 * some, else after the package (or syntax) statement.
 */
export function importEdit(tokens: Token[], path: string): TextEdit {
  const imports = importsOf(tokens);
  const line = `import "${path}";\n`;
  if (imports.length) {
    const before = imports.find((i) => !i.modifier && i.path > path);
    const at = before ? before.range.start.line : imports[imports.length - 1]!.range.end.line + 1;
    return { range: { start: { line: at, character: 0 }, end: { line: at, character: 0 } }, newText: line };
  }
  const anchor = lastTopStatement(tokens, ["package", "syntax", "edition"]);
  if (!anchor) return { range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } }, newText: `${line}\n` };
  const at = anchor.line + 1;
  return { range: { start: { line: at, character: 0 }, end: { line: at, character: 0 } }, newText: `\n${line}` };
}

/** The `;` ending the last top-level statement that starts with one of `words`. */
function lastTopStatement(tokens: Token[], words: string[]): Token | undefined {
  for (const word of words) {
    const k = tokens.findIndex((t, i) => t.text === word && (i === 0 || /[;}]/.test(tokens[i - 1]!.text)));
    if (k < 0) continue;
    const semi = tokens.slice(k).find((t) => t.text === ";");
    if (semi) return semi;
  }
  return undefined;
}

/**
 * Imports of a buffer that no name in it resolves into. Public imports re-export and are
 * kept; an import the last compile knows nothing of is not called unused (we cannot tell).
 */
export function unusedImports(snap: Snapshot, tokens: Token[]): ImportStatement[] {
  const used = new Set<string>();
  const indexes = indexesOf(snap);
  for (const use of nameUses(tokens)) {
    if (use.declares !== undefined) continue;
    for (const index of indexes) for (const { decl } of resolveParts(index, use)) if (decl) used.add(decl.file);
  }
  const known = (p: string) => indexes.some((index) => index.files.has(p));
  return importsOf(tokens).filter((i) => !i.modifier && known(i.path) && !reexports(snap, i.path).some((f) => used.has(f)));
}

/** A file and what it re-exports through `import public`, transitively. */
function reexports(snap: Snapshot, path: string, seen = new Set<string>()): string[] {
  if (seen.has(path)) return [];
  seen.add(path);
  const desc = snap.compiled.descriptors?.find((f) => f.name === path);
  for (const i of desc?.publicDependency ?? []) {
    const dep = desc!.dependency[i];
    if (dep) reexports(snap, dep, seen);
  }
  return [...seen];
}

/** The shortest name that resolves to `decl` from `pkg`: relative inside the package, else full. */
export function nameFrom(pkg: string, decl: Decl): string {
  return pkg && decl.fqn.startsWith(`${pkg}.`) ? decl.fqn.slice(pkg.length + 1) : decl.fqn;
}

/** Files that import `file`, directly or not: importing one of them would be a cycle. */
export function importersOf(snap: Snapshot, file: string): Set<string> {
  const out = new Set<string>();
  let grew = true;
  while (grew) {
    grew = false;
    for (const f of snap.index.files.values()) {
      if (out.has(f.path)) continue;
      if (f.imports.some((i) => i.path === file || out.has(i.path))) {
        out.add(f.path);
        grew = true;
      }
    }
  }
  return out;
}
