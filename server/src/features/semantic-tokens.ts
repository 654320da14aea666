// Semantic tokens: what each name in the buffer IS, from the compiled descriptors. The
// TextMate grammar colours by syntax (it guesses that `Money` in `Money total = 1` is a type);
// these say that `Money` is a message and `Status` an enum, that `PENDING` is an enum value,
// and mark declarations and the well-known types, so themes colour them as they do in code.
import { SemanticTokensBuilder, type Range, type SemanticTokens, type SemanticTokensLegend } from "vscode-languageserver";
import type { Decl, DeclKind } from "../analysis/proto-index.js";
import type { Snapshot } from "../analysis/snapshot.js";
import { outlineAt, scopeOf, tokenize, type Token } from "../analysis/tokenizer.js";

// Standard token types and modifiers of LSP, so every theme has colours for them.
const TYPES = ["namespace", "struct", "enum", "enumMember", "property", "method", "interface", "decorator"] as const;
const MODIFIERS = ["declaration", "defaultLibrary"] as const;
type TokenType = (typeof TYPES)[number];

export const SEMANTIC_TOKENS_LEGEND: SemanticTokensLegend = { tokenTypes: [...TYPES], tokenModifiers: [...MODIFIERS] };

const BY_KIND: Record<DeclKind, TokenType> = {
  message: "struct",
  enum: "enum",
  enumValue: "enumMember",
  field: "property",
  oneof: "property",
  method: "method",
  service: "interface",
};

const DECLARATION = 1 << MODIFIERS.indexOf("declaration");
const DEFAULT_LIBRARY = 1 << MODIFIERS.indexOf("defaultLibrary");

interface Classified {
  token: Token;
  type: TokenType;
  modifiers: number;
}

/** The tokens of `text` (the buffer of `file`) that name something, in document order. */
export function classify(snap: Snapshot, file: string, text: string): Classified[] {
  const imp = snap.importPathOf(file);
  const tokens = tokenize(text);
  // Declarations of this file by the position of their name.
  const declared = new Map<string, Decl>();
  const enumValues = new Map<string, Decl>();
  for (const d of snap.index.byFqn.values()) {
    if (d.file === imp && d.nameRange) declared.set(`${d.nameRange.start.line}:${d.nameRange.start.character}`, d);
    if (d.kind === "enumValue" && !enumValues.has(d.name)) enumValues.set(d.name, d);
  }
  const out: Classified[] = [];
  let bracketDepth = 0;
  // The scope only changes at braces: work it out once per block, not once per name.
  let scope: string | undefined;
  for (let k = 0; k < tokens.length; k++) {
    const t = tokens[k]!;
    if (t.kind === "punct") {
      if (t.text === "{" || t.text === "}") scope = undefined;
      if (t.text === "[") bracketDepth++;
      else if (t.text === "]") bracketDepth = Math.max(0, bracketDepth - 1);
      continue;
    }
    if (t.kind !== "ident") continue;
    const prev = tokens[k - 1]?.text;
    const next = tokens[k + 1]?.text;
    const own = declared.get(`${t.line}:${t.character}`);
    if (own && own.name === t.text) {
      out.push({ token: t, type: BY_KIND[own.kind], modifiers: DECLARATION });
      continue;
    }
    if (prev === "package") {
      scope = undefined;
      out.push({ token: t, type: "namespace", modifiers: 0 });
      continue;
    }
    // Option names: `option java_package =`, `[deprecated = true]`, `(grpcrouter.v1.service)`.
    const customOption = prev === "(" && next === ")" && /^(option|\[|,|\.|=)$/.test(tokens[k - 2]?.text ?? "") === true;
    const plainOption = (prev === "option" || (bracketDepth > 0 && (prev === "[" || prev === ","))) && (next === "=" || next === ".");
    if (customOption || plainOption) {
      out.push({ token: t, type: "decorator", modifiers: 0 });
      continue;
    }
    // A field of an option's message value, in text format: `routing_key: { field: "id" }`.
    if (next === ":") {
      out.push({ token: t, type: "property", modifiers: 0 });
      continue;
    }
    if (
      /^(syntax|edition|import|option|message|enum|service|rpc|returns|stream|oneof|map|extend|reserved|extensions|to|max|repeated|optional|required|group|public|weak|true|false)$/.test(
        t.text,
      )
    )
      continue;
    scope ??= scopeOf(outlineAt(tokens, t.offset));
    const ref = snap.index.resolve(t.text, scope);
    if (ref && (ref.kind === "message" || ref.kind === "enum")) {
      out.push({ token: t, type: BY_KIND[ref.kind], modifiers: ref.file.startsWith("google/protobuf/") ? DEFAULT_LIBRARY : 0 });
      continue;
    }
    // An enum value in an option's value: `balancer: BALANCER_ROUND_ROBIN`, `= IMPLICIT`.
    if ((prev === ":" || prev === "=") && (ref?.kind === "enumValue" || enumValues.has(t.text))) {
      out.push({ token: t, type: "enumMember", modifiers: 0 });
    }
  }
  return out;
}

export function semanticTokens(snap: Snapshot, file: string, text: string, range?: Range): SemanticTokens {
  const b = new SemanticTokensBuilder();
  for (const c of classify(snap, file, text)) {
    const { line, character } = c.token;
    if (range && (line < range.start.line || line > range.end.line)) continue;
    b.push(line, character, c.token.text.length, TYPES.indexOf(c.type), c.modifiers);
  }
  return b.build();
}
