// Every name in a .proto buffer, read from its tokens: which declare something (and what
// fully-qualified name they declare) and which refer to something (and from which scope they
// are resolved). References, rename, highlights and the import code actions all read names
// this way, so they work on the text as it is now, in open and unopened files alike.
import type { Decl, ProtoIndex, Range } from "./proto-index.js";
import type { Token } from "./tokenizer.js";

export interface NameUse {
  token: Token;
  /** Package and enclosing messages (`shop.v1.Order`): where a reference is resolved from. */
  scope: string;
  /** For a declaration: the fully-qualified name it declares. */
  declares?: string;
}

/** One dotted part of a name token, with where it is in the buffer. */
export interface NamePart {
  /** The name up to and including this part (`shop.v1.Money` for its third part). */
  prefix: string;
  range: Range;
  offset: number;
  end: number;
}

/** Words that are syntax, never names (a user may still name a field `stream`: rare enough). */
const KEYWORDS = new Set([
  "syntax",
  "edition",
  "package",
  "import",
  "public",
  "weak",
  "option",
  "message",
  "enum",
  "service",
  "rpc",
  "returns",
  "stream",
  "oneof",
  "extend",
  "extensions",
  "reserved",
  "to",
  "max",
  "repeated",
  "optional",
  "required",
  "map",
  "group",
  "true",
  "false",
  "inf",
  "nan",
  "double",
  "float",
  "int32",
  "int64",
  "uint32",
  "uint64",
  "sint32",
  "sint64",
  "fixed32",
  "fixed64",
  "sfixed32",
  "sfixed64",
  "bool",
  "string",
  "bytes",
]);

const DECLARING = new Set(["message", "enum", "service", "oneof", "rpc"]);

interface Frame {
  kind: string;
  name: string;
  /** For an option aggregate (`option (x) = {`): text-format keys inside are no names of ours. */
  aggregate: boolean;
}

export function nameUses(tokens: Token[]): NameUse[] {
  const out: NameUse[] = [];
  const stack: Frame[] = [];
  let pkg = "";
  let stmt = 0; // index of the first token of the current statement
  let brackets = 0; // depth of `[ … ]` (field options)
  let parens = 0;
  const scope = () => [pkg, ...stack.filter((f) => f.kind === "message").map((f) => f.name)].filter(Boolean).join(".");
  for (let k = 0; k < tokens.length; k++) {
    const t = tokens[k]!;
    if (t.kind === "punct") {
      if (t.text === "{") {
        const first = tokens[stmt]!;
        const kind = first.kind === "ident" && DECLARING.has(first.text) ? first.text : first.text === "extend" ? "extend" : "other";
        const aggregate = first.text === "option" || stack[stack.length - 1]?.aggregate === true || brackets > 0;
        stack.push({ kind, name: tokens[stmt + 1]?.text ?? "", aggregate: aggregate && kind === "other" });
        stmt = k + 1;
      } else if (t.text === "}") {
        stack.pop();
        stmt = k + 1;
      } else if (t.text === ";") {
        stmt = k + 1;
        brackets = 0;
        parens = 0;
      } else if (t.text === "[") brackets++;
      else if (t.text === "]") brackets = Math.max(0, brackets - 1);
      else if (t.text === "(") parens++;
      else if (t.text === ")") parens = Math.max(0, parens - 1);
      continue;
    }
    if (t.kind !== "ident") continue;
    const first = tokens[stmt]!;
    const prev = tokens[k - 1];
    const next = tokens[k + 1];
    const top = stack[stack.length - 1];
    if (first.text === "package" && k === stmt + 1 && stack.length === 0) {
      pkg = t.text;
      continue;
    }
    if (/^(syntax|edition|package|import)$/.test(first.text) && stack.length === 0) continue;
    // `(my.option).sub_field`: the part after `)` names a field of the option's type.
    if (t.text.startsWith(".") && prev?.text === ")") continue;
    // Declarations: `message Foo`, `enum Foo`, `service Foo`, `oneof foo`, `rpc Foo`.
    if (prev && k === stmt + 1 && DECLARING.has(prev.text) && !top?.aggregate) {
      const service = stack.filter((f) => f.kind === "service").pop();
      const declares = prev.text === "service" ? join(pkg, t.text) : prev.text === "rpc" ? join(pkg, service?.name ?? "", t.text) : join(scope(), t.text);
      out.push({ token: t, scope: scope(), declares });
      continue;
    }
    if (top?.aggregate) {
      // A text-format key (`routing_key: {`, `balancer:`) is a field of the option's type.
      if (next?.text === ":" || next?.text === "{" || next?.text === "<") continue;
      if (KEYWORDS.has(t.text)) continue;
      out.push({ token: t, scope: scope() });
      continue;
    }
    if (first.text === "option" && parens === 0 && next?.text !== ";" && tokens.slice(stmt, k).every((x) => x.text !== "=")) continue;
    if (brackets > 0 && parens === 0 && next?.text === "=") continue; // `[json_name = …]`
    // A field (`Money total = 3`) or an enum value (`STATUS_OPEN = 1`) is declared by its name.
    if (next?.text === "=" && brackets === 0 && first.text !== "option" && top && /^(message|oneof|extend|enum|other)$/.test(top.kind)) {
      const inEnum = top.kind === "enum";
      if (inEnum ? k === stmt : k > stmt) {
        out.push({ token: t, scope: scope(), declares: join(scope(), t.text) });
        continue;
      }
    }
    if (KEYWORDS.has(t.text)) continue;
    out.push({ token: t, scope: scope() });
  }
  return out;
}

function join(...parts: string[]): string {
  return parts.filter(Boolean).join(".");
}

/** The dotted parts of a name token (`.shop.v1.Money` → `.shop`, `.shop.v1`, `.shop.v1.Money`). */
export function partsOf(token: Token): NamePart[] {
  const parts: NamePart[] = [];
  const absolute = token.text.startsWith(".");
  const body = absolute ? token.text.slice(1) : token.text;
  let at = token.offset + (absolute ? 1 : 0);
  let character = token.character + (absolute ? 1 : 0);
  const names = body.split(".");
  names.forEach((name, i) => {
    if (name) {
      parts.push({
        prefix: (absolute ? "." : "") + names.slice(0, i + 1).join("."),
        range: { start: { line: token.line, character }, end: { line: token.line, character: character + name.length } },
        offset: at,
        end: at + name.length,
      });
    }
    at += name.length + 1;
    character += name.length + 1;
  });
  return parts;
}

export function tokenRange(token: Token): Range {
  return { start: { line: token.line, character: token.character }, end: { line: token.line, character: token.character + token.text.length } };
}

/** What each part of a reference resolves to (undefined where nothing does, e.g. a package). */
export function resolveParts(index: ProtoIndex, use: NameUse): { part: NamePart; decl: Decl | undefined }[] {
  return partsOf(use.token).map((part) => ({ part, decl: index.resolve(part.prefix, use.scope) }));
}

/** The import statements of a buffer, as written now. */
export interface ImportStatement {
  path: string;
  modifier?: "public" | "weak";
  /** From `import` through `;` (or the path when the `;` is missing). */
  range: Range;
  start: number;
  end: number;
  /** The string's content, quotes excluded. */
  pathRange: Range;
}

export function importsOf(tokens: Token[]): ImportStatement[] {
  const out: ImportStatement[] = [];
  let depth = 0;
  for (let k = 0; k < tokens.length; k++) {
    const t = tokens[k]!;
    if (t.text === "{") depth++;
    else if (t.text === "}") depth--;
    if (depth !== 0 || t.kind !== "ident" || t.text !== "import") continue;
    if (k > 0 && !/[;{}]/.test(tokens[k - 1]!.text)) continue;
    let j = k + 1;
    let modifier: ImportStatement["modifier"];
    if (tokens[j]?.text === "public" || tokens[j]?.text === "weak") modifier = tokens[j++]!.text as ImportStatement["modifier"];
    const str = tokens[j];
    if (str?.kind !== "string") continue;
    const semi = tokens[j + 1]?.text === ";" ? tokens[j + 1]! : str;
    const closed = str.text.length > 1 && str.text.endsWith(str.text[0]!);
    out.push({
      path: str.text.slice(1, closed ? -1 : undefined),
      modifier,
      range: { start: { line: t.line, character: t.character }, end: { line: semi.line, character: semi.character + semi.text.length } },
      start: t.offset,
      end: semi.end,
      pathRange: {
        start: { line: str.line, character: str.character + 1 },
        end: { line: str.line, character: str.character + str.text.length - (closed ? 1 : 0) },
      },
    });
  }
  return out;
}
