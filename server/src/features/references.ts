// References, document highlights and rename. The declaration comes from the last good
// compile; the occurrences are read from the text of every file of the module as it is now
// (open buffers, else the disk), so positions are never stale and unopened files count too.
import { pathToFileURL } from "node:url";
import { DocumentHighlightKind, type DocumentHighlight, type Location, type Range, type TextEdit, type WorkspaceEdit } from "vscode-languageserver";
import { nameUses, resolveParts, tokenRange } from "../analysis/names.js";
import type { Decl } from "../analysis/proto-index.js";
import type { Snapshot } from "../analysis/snapshot.js";
import { offsetAt, outlineAt, tokenize, type Position, type Token } from "../analysis/tokenizer.js";
import { isWellKnown } from "../analysis/well-known.js";

/** Where the files of a module are and what they say now. */
export interface ModuleTexts {
  /** The module's own files: import path → absolute path. */
  files: ReadonlyMap<string, string>;
  /** The buffer of an open file, else the file on disk (undefined when unreadable). */
  read(file: string): string | undefined;
  /** Whether a file lies in a folder the user opened (only those may be renamed into). */
  inWorkspace(file: string): boolean;
}

export interface Occurrence {
  range: Range;
  declaration: boolean;
}

interface Target {
  decl: Decl;
  /** The part of the name under the cursor. */
  range: Range;
}

/** The declaration named at the cursor: a declared name, or one part of a reference. */
export function targetAt(snap: Snapshot, text: string, pos: Position): Target | undefined {
  const offset = offsetAt(text, pos);
  const use = nameUses(tokenize(text)).find((u) => u.token.offset <= offset && offset <= u.token.end);
  if (!use) return undefined;
  if (use.declares) {
    const decl = snap.index.byFqn.get(use.declares);
    return decl ? { decl, range: tokenRange(use.token) } : undefined;
  }
  const parts = resolveParts(snap.index, use);
  const at = parts.find(({ part }) => part.offset <= offset && offset <= part.end) ?? parts[parts.length - 1];
  return at?.decl ? { decl: at.decl, range: at.part.range } : undefined;
}

/** Where a declaration is named in one text: its declaration and every reference part. */
export function occurrencesIn(snap: Snapshot, text: string, fqn: string): Occurrence[] {
  const tokens = tokenize(text);
  const uses = nameUses(tokens);
  const out: Occurrence[] = snap.index.byFqn.get(fqn)?.kind === "field" ? routingKeyPaths(snap, tokens, fqn) : [];
  const name = fqn.slice(fqn.lastIndexOf(".") + 1);
  for (const use of uses) {
    if (use.declares !== undefined) {
      if (use.declares === fqn) out.push({ range: tokenRange(use.token), declaration: true });
      continue;
    }
    // Cheap test first: most names of a file are not the one we look for.
    if (!use.token.text.includes(name)) continue;
    for (const { part, decl } of resolveParts(snap.index, use)) if (decl?.fqn === fqn) out.push({ range: part.range, declaration: false });
  }
  return out;
}

/**
 * The parts of grpcrouter routing-key field paths (`routing_key: { field: "customer.id" }`)
 * that name the field `fqn`, followed from the request type of each method the option
 * applies to: renaming a field renames it there too, or routing would break.
 */
function routingKeyPaths(snap: Snapshot, tokens: Token[], fqn: string): Occurrence[] {
  const out = new Map<string, Occurrence>();
  const name = fqn.slice(fqn.lastIndexOf(".") + 1);
  tokens.forEach((t, k) => {
    if (t.kind !== "string" || tokens[k - 1]?.text !== ":" || tokens[k - 2]?.text !== "field" || !t.text.includes(name)) return;
    const outline = outlineAt(tokens, t.offset);
    if (!outline.path.some((b) => b.kind === "option" && /grpcrouter\.v1\.(service|method)/.test(b.name))) return;
    const service = outline.path.find((b) => b.kind === "service");
    const rpc = outline.path.find((b) => b.kind === "rpc");
    const serviceDecl = service && snap.index.byFqn.get([outline.package, service.name].filter(Boolean).join("."));
    const methods = rpc ? serviceDecl?.children.filter((m) => m.name === rpc.name) : serviceDecl?.children;
    const segments = t.text.slice(1, -1).split(".");
    for (const method of methods ?? []) {
      let message = method.method && snap.index.byFqn.get(method.method.inputType);
      let character = t.character + 1;
      for (const segment of segments) {
        const fields = message?.children.flatMap((c) => (c.kind === "oneof" ? c.children : [c])) ?? [];
        const field = fields.find((f) => f.kind === "field" && f.name === segment);
        if (!field) break;
        if (field.fqn === fqn) {
          const range = { start: { line: t.line, character }, end: { line: t.line, character: character + segment.length } };
          out.set(`${t.line}:${character}`, { range, declaration: false });
        }
        message = field.typeName ? snap.index.byFqn.get(field.typeName) : undefined;
        character += segment.length + 1;
      }
    }
  });
  return [...out.values()];
}

function eachModuleFile(mod: ModuleTexts, visit: (file: string, text: string) => void): void {
  for (const file of new Set(mod.files.values())) {
    const text = mod.read(file);
    if (text !== undefined) visit(file, text);
  }
}

export function references(snap: Snapshot, mod: ModuleTexts, text: string, pos: Position, includeDeclaration: boolean): Location[] {
  const target = targetAt(snap, text, pos);
  if (!target) return [];
  const out: Location[] = [];
  eachModuleFile(mod, (file, fileText) => {
    for (const o of occurrencesIn(snap, fileText, target.decl.fqn)) {
      if (includeDeclaration || !o.declaration) out.push({ uri: pathToFileURL(file).href, range: o.range });
    }
  });
  return out;
}

export function documentHighlights(snap: Snapshot, text: string, pos: Position): DocumentHighlight[] {
  const target = targetAt(snap, text, pos);
  if (!target) return [];
  return occurrencesIn(snap, text, target.decl.fqn).map((o) => ({
    range: o.range,
    kind: o.declaration ? DocumentHighlightKind.Write : DocumentHighlightKind.Read,
  }));
}

/** Why a declaration cannot be renamed, or undefined when it can. */
function refusal(decl: Decl, mod: ModuleTexts): string | undefined {
  if (isWellKnown(decl.file)) return `${decl.fqn} is a well-known type of protobuf (${decl.file}); it cannot be renamed.`;
  const file = mod.files.get(decl.file);
  if (!file || !mod.inWorkspace(file)) return `${decl.fqn} is declared in ${decl.file}, outside this workspace; it cannot be renamed here.`;
  return undefined;
}

export class RenameError extends Error {}

export function prepareRename(snap: Snapshot, mod: ModuleTexts, text: string, pos: Position): { range: Range; placeholder: string } | undefined {
  const target = targetAt(snap, text, pos);
  if (!target) return undefined;
  const why = refusal(target.decl, mod);
  if (why) throw new RenameError(why);
  return { range: target.range, placeholder: target.decl.name };
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function rename(snap: Snapshot, mod: ModuleTexts, text: string, pos: Position, newName: string): WorkspaceEdit | undefined {
  const target = targetAt(snap, text, pos);
  if (!target) return undefined;
  const why = refusal(target.decl, mod);
  if (why) throw new RenameError(why);
  if (!IDENT.test(newName)) throw new RenameError(`"${newName}" is not a valid protobuf name (letters, digits and _, not starting with a digit).`);
  const { decl } = target;
  const parent = decl.fqn.slice(0, decl.fqn.length - decl.name.length);
  const clash = snap.index.byFqn.get(parent + newName);
  if (clash && clash !== decl) throw new RenameError(`${parent}${newName} already exists (a ${clash.kind} in ${clash.file}).`);
  const changes: Record<string, TextEdit[]> = {};
  eachModuleFile(mod, (file, fileText) => {
    const edits = occurrencesIn(snap, fileText, decl.fqn).map((o) => ({ range: o.range, newText: newName }));
    if (edits.length) changes[pathToFileURL(file).href] = edits;
  });
  return { changes };
}
