// A small tokenizer for .proto text. The compiler gives us descriptors of the last good
// build; this reads the CURRENT buffer, so that "what is under the cursor" and "where am I"
// stay right while the user types (and while the file does not compile).

export type TokenKind = "ident" | "string" | "number" | "punct";

export interface Token {
  kind: TokenKind;
  text: string;
  /** 0-based line and character, like LSP. */
  line: number;
  character: number;
  offset: number;
  end: number;
}

export interface Position {
  line: number;
  character: number;
}

export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let line = 0;
  let lineStart = 0;
  let i = 0;
  const n = text.length;
  const push = (kind: TokenKind, start: number, end: number) => {
    tokens.push({ kind, text: text.slice(start, end), line, character: start - lineStart, offset: start, end });
  };
  while (i < n) {
    const c = text[i]!;
    if (c === "\n") {
      i++;
      line++;
      lineStart = i;
      continue;
    }
    if (c === " " || c === "\t" || c === "\r" || c === "\f" || c === "\v") {
      i++;
      continue;
    }
    if (c === "/" && text[i + 1] === "/") {
      while (i < n && text[i] !== "\n") i++;
      continue;
    }
    if (c === "/" && text[i + 1] === "*") {
      i += 2;
      while (i < n && !(text[i] === "*" && text[i + 1] === "/")) {
        if (text[i] === "\n") {
          line++;
          lineStart = i + 1;
        }
        i++;
      }
      i += 2;
      continue;
    }
    if (c === '"' || c === "'") {
      const start = i++;
      while (i < n && text[i] !== c && text[i] !== "\n") i += text[i] === "\\" ? 2 : 1;
      if (text[i] === c) i++;
      push("string", start, i);
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      const start = i;
      // Dotted names (`google.protobuf.Timestamp`, `.pkg.Msg`) are one token: that is how
      // a user thinks of a type reference.
      while (i < n && /[A-Za-z0-9_.]/.test(text[i]!)) i++;
      push("ident", start, i);
      continue;
    }
    if (c === "." && /[A-Za-z_]/.test(text[i + 1] ?? "")) {
      const start = i++;
      while (i < n && /[A-Za-z0-9_.]/.test(text[i]!)) i++;
      push("ident", start, i);
      continue;
    }
    if (/[0-9]/.test(c) || (c === "-" && /[0-9]/.test(text[i + 1] ?? ""))) {
      const start = i++;
      while (i < n && /[0-9A-Za-z_.+-]/.test(text[i]!)) i++;
      push("number", start, i);
      continue;
    }
    push("punct", i, i + 1);
    i++;
  }
  return tokens;
}

export function offsetAt(text: string, pos: Position): number {
  let line = 0;
  let i = 0;
  while (line < pos.line) {
    const nl = text.indexOf("\n", i);
    if (nl < 0) return text.length;
    i = nl + 1;
    line++;
  }
  return Math.min(i + pos.character, text.length);
}

/** The token that contains the position, or ends right at it (cursor just after a word). */
export function tokenAt(tokens: Token[], offset: number): Token | undefined {
  for (const t of tokens) {
    if (t.offset <= offset && offset < t.end) return t;
    if (t.end === offset && (t.kind === "ident" || t.kind === "string")) return t;
    if (t.offset > offset) break;
  }
  return undefined;
}

/** A block of the buffer's structure, found by reading tokens (not the compiler). */
export interface Block {
  kind: "message" | "enum" | "service" | "rpc" | "option" | "oneof" | "extend" | "other";
  name: string;
  /** Offsets of `{` and matching `}` (or end of text while unfinished). */
  open: number;
  close: number;
}

export interface Outline {
  package: string;
  /** Blocks containing the offset, outermost first. */
  path: Block[];
}

/** The package and the chain of blocks that contain `offset` in the current buffer. */
export function outlineAt(tokens: Token[], offset: number): Outline {
  let pkg = "";
  const stack: Block[] = [];
  let path: Block[] | undefined;
  for (let k = 0; k < tokens.length; k++) {
    const t = tokens[k]!;
    if (t.offset >= offset && !path) path = [...stack];
    if (t.kind === "ident" && t.text === "package" && stack.length === 0) {
      const name = tokens[k + 1];
      if (name?.kind === "ident") pkg = name.text;
    }
    if (t.kind === "punct" && t.text === "{") {
      stack.push({ ...blockHead(tokens, k), open: t.offset, close: Number.MAX_SAFE_INTEGER });
    } else if (t.kind === "punct" && t.text === "}") {
      const b = stack.pop();
      if (b) b.close = t.offset;
    }
  }
  return { package: pkg, path: path ?? [...stack] };
}

/** What kind of block a `{` at tokens[k] opens, by looking back at its head. */
function blockHead(tokens: Token[], k: number): { kind: Block["kind"]; name: string } {
  // Walk back to the start of the statement: the previous `;`, `{` or `}`.
  let s = k - 1;
  while (s >= 0 && !(tokens[s]!.kind === "punct" && /[;{}]/.test(tokens[s]!.text))) s--;
  const head = tokens.slice(s + 1, k);
  const first = head[0];
  if (!first) return { kind: "other", name: "" };
  if (first.kind === "ident") {
    switch (first.text) {
      case "message":
      case "enum":
      case "service":
      case "oneof":
        return { kind: first.text, name: head[1]?.text ?? "" };
      case "rpc":
        return { kind: "rpc", name: head[1]?.text ?? "" };
      case "extend":
        return { kind: "extend", name: head[1]?.text ?? "" };
      case "option":
        return {
          kind: "option",
          name:
            head
              .slice(1)
              .map((t) => t.text)
              .join("")
              .split("=")[0] ?? "",
        };
    }
  }
  // A nested aggregate inside an option value: `routing_key: {` or `routing_key {`.
  const named = head.filter((t) => t.kind === "ident");
  return { kind: "other", name: named[named.length - 1]?.text ?? "" };
}

/** The fully-qualified scope (package + enclosing messages) at an outline, for name lookup. */
export function scopeOf(outline: Outline): string {
  const parts = outline.package ? [outline.package] : [];
  for (const b of outline.path) if (b.kind === "message") parts.push(b.name);
  return parts.join(".");
}
