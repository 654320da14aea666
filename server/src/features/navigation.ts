// Go to definition and hover: the word under the cursor comes from the current buffer (the
// tokenizer), what it means comes from the last good compile (descriptors + source info).
import { pathToFileURL } from "node:url";
import type { Hover, Location, MarkupContent } from "vscode-languageserver";
import type { Decl } from "../analysis/proto-index.js";
import type { Snapshot } from "../analysis/snapshot.js";
import { offsetAt, outlineAt, scopeOf, tokenAt, tokenize, type Position, type Token } from "../analysis/tokenizer.js";

type Target = { kind: "import"; path: string; token: Token } | { kind: "decl"; decl: Decl; token: Token };

/** What the cursor is on: an import path, or a name that resolves to a declaration. */
export function targetAt(snap: Snapshot, file: string, text: string, pos: Position): Target | undefined {
  const tokens = tokenize(text);
  const offset = offsetAt(text, pos);
  const token = tokenAt(tokens, offset);
  if (!token) return undefined;
  const k = tokens.indexOf(token);
  if (token.kind === "string") {
    const prev = tokens[k - 1];
    const isImport = prev?.text === "import" || (tokens[k - 2]?.text === "import" && /^(public|weak)$/.test(prev?.text ?? ""));
    return isImport ? { kind: "import", path: token.text.slice(1, -1), token } : undefined;
  }
  if (token.kind !== "ident") return undefined;
  const outline = outlineAt(tokens, offset);
  const imp = snap.importPathOf(file);
  // The name of a declaration itself (`message Foo`, `rpc Say`) hovers as that declaration.
  const declared = imp ? snap.index.declaredAt(imp, pos) : undefined;
  if (declared && declared.name === token.text) return { kind: "decl", decl: declared, token };
  const decl = resolveName(snap, token.text, outline, tokens, k);
  return decl ? { kind: "decl", decl, token } : undefined;
}

function resolveName(snap: Snapshot, name: string, outline: ReturnType<typeof outlineAt>, tokens: Token[], k: number): Decl | undefined {
  const scope = scopeOf(outline);
  // A declaration named in the current scope: `rpc Say` inside `service Echo`, a field name.
  const inner = outline.path[outline.path.length - 1];
  if (tokens[k - 1]?.text === "rpc" && inner?.kind === "service") {
    return snap.index.byFqn.get([outline.package, inner.name, name].filter(Boolean).join("."));
  }
  const found = snap.index.resolve(name, scope);
  if (found) return found;
  // Option values name enum values of the option's own package (`BALANCER_ROUND_ROBIN`).
  for (const d of snap.index.byFqn.values()) if (d.fqn.endsWith(`.${name}`) && d.kind === "enumValue") return d;
  return undefined;
}

export function definition(snap: Snapshot, file: string, text: string, pos: Position): Location | undefined {
  const t = targetAt(snap, file, text, pos);
  if (!t) return undefined;
  const zero = { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } };
  if (t.kind === "import") {
    const target = snap.fileOf(t.path);
    if (target) return { uri: pathToFileURL(target).href, range: zero };
    // A well-known type: its printed copy, at its first declaration (past the licence).
    const printed = snap.printedFile(t.path);
    return printed ? { uri: pathToFileURL(printed.file).href, range: printed.first ?? zero } : undefined;
  }
  const target = snap.fileOf(t.decl.file);
  if (target) return { uri: pathToFileURL(target).href, range: t.decl.nameRange ?? zero };
  // The printed copy's positions are its own, not those of buf's source: look the name up there.
  const printed = snap.printedFile(t.decl.file);
  return printed ? { uri: pathToFileURL(printed.file).href, range: printed.names.get(t.decl.fqn) ?? printed.first ?? zero } : undefined;
}

export function hover(snap: Snapshot, file: string, text: string, pos: Position): Hover | undefined {
  const t = targetAt(snap, file, text, pos);
  if (!t) return undefined;
  const range = {
    start: { line: t.token.line, character: t.token.character },
    end: { line: t.token.line, character: t.token.character + t.token.text.length },
  };
  if (t.kind === "import") {
    const known = snap.index.files.get(t.path);
    const value = known ? `\`${t.path}\` — package \`${known.package || "(none)"}\`` : `\`${t.path}\` (not found in the module)`;
    return { contents: { kind: "markdown", value }, range };
  }
  return { contents: describe(snap, t.decl), range };
}

export function methodKind(m: NonNullable<Decl["method"]>): string {
  if (m.clientStreaming && m.serverStreaming) return "bidirectional streaming";
  if (m.clientStreaming) return "client streaming";
  if (m.serverStreaming) return "server streaming";
  return "unary";
}

export function describe(snap: Snapshot, d: Decl): MarkupContent {
  const lines: string[] = [];
  const signature =
    d.kind === "method"
      ? `rpc ${d.name}${d.detail}`
      : d.kind === "field" || d.kind === "enumValue"
        ? `${d.detail.startsWith("=") ? `${d.name} ${d.detail}` : d.detail}`
        : `${d.kind} ${d.fqn}`;
  lines.push("```proto", signature, "```");
  if (d.kind === "field" || d.kind === "enumValue") lines.push(`\`${d.fqn}\``);
  if (d.method) {
    lines.push("", `**${methodKind(d.method)}**`);
    const frame = snap.frame(d);
    if (frame) {
      lines.push(
        "",
        `Router frames: field **${frame.fieldNumber}** of \`${frame.routerFrame}\` (request, router → instance) and of \`${frame.instanceFrame}\` (response, instance → router).`,
      );
    }
  }
  if (d.doc) lines.push("", "---", "", d.doc);
  return { kind: "markdown", value: lines.join("\n") };
}
