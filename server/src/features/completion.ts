// Completion. The context (inside which block, after which tokens, what prefix is typed) comes
// from the current buffer; the names from the last good compile and the well-known types.
// Every item carries a textEdit over the word being typed, so a qualified prefix
// (`shop.v1.`, `google.protobuf.`) is replaced, not appended to; a type from a file not
// imported yet brings its import along (additionalTextEdits).
import { CompletionItemKind, InsertTextFormat, type CompletionItem, type Range, type TextEdit } from "vscode-languageserver";
import { allTypes, importEdit, importersOf, nameFrom, visibleFiles } from "../analysis/imports.js";
import { importsOf } from "../analysis/names.js";
import { customOptions, standardOptions, type OptionInfo, type OptionTarget } from "../analysis/options.js";
import { SCALAR_TYPES, type Decl } from "../analysis/proto-index.js";
import type { Snapshot } from "../analysis/snapshot.js";
import { offsetAt, outlineAt, tokenAt, tokenize, type Block, type Position, type Token } from "../analysis/tokenizer.js";
import { wellKnownImports } from "../analysis/well-known.js";

const BALANCERS: [string, string][] = [
  ["BALANCER_ROUND_ROBIN", "each call to the next instance in turn"],
  ["BALANCER_WEIGHTED_ROUND_ROBIN", "round robin by the instances' registered weights"],
  ["BALANCER_LEAST_OUTSTANDING", "the instance with the fewest calls in flight"],
  ["BALANCER_CONSISTENT_HASH", "the same routing key goes to the same instance (bounded load)"],
];

const OPTIONS_IMPORT = "grpcrouter/v1/options.proto";

/** The types protobuf allows as map keys: integral types, bool and string. */
export const MAP_KEY_TYPES = ["int32", "int64", "uint32", "uint64", "sint32", "sint64", "fixed32", "fixed64", "sfixed32", "sfixed64", "bool", "string"];

/** Field numbers protobuf reserves for its own implementation. */
const RESERVED_FOR_PROTOBUF: [number, number] = [19000, 19999];
const MAX_FIELD_NUMBER = 536_870_911;

/** Where the cursor is: the statement before it, the word being typed and what it replaces. */
interface Here {
  snap: Snapshot | undefined;
  file: string;
  text: string;
  tokens: Token[];
  offset: number;
  pkg: string;
  /** The blocks around the cursor, outermost first, and the innermost. */
  path: Block[];
  inner: Block | undefined;
  /** Tokens of the current statement before the word being typed. */
  stmt: Token[];
  last: string | undefined;
  /** What is typed of the current word (`shop.v1.Mo`) and the range it occupies up to the cursor. */
  prefix: string;
  range: Range;
}

export function completion(snap: Snapshot | undefined, file: string, text: string, pos: Position): CompletionItem[] {
  const offset = offsetAt(text, pos);
  const tokens = tokenize(text);
  const outline = outlineAt(tokens, offset);
  const at = tokenAt(tokens, offset);

  // Inside a string: only an import path is ours to complete.
  if (at?.kind === "string" && at.offset < offset && (offset < at.end || !closed(at))) {
    const k = tokens.indexOf(at);
    const head = tokens[k - 1]?.text === "import" || (tokens[k - 2]?.text === "import" && /^(public|weak)$/.test(tokens[k - 1]?.text ?? ""));
    if (!head) return [];
    const start = { line: at.line, character: at.character + 1 };
    const end = closed(at) ? { line: at.line, character: at.character + at.text.length - 1 } : pos;
    return importPathItems(snap, file, tokens, { start, end }, false);
  }

  const word = at?.kind === "ident" && at.offset < offset ? at : undefined;
  const before = tokens.filter((t) => t.end <= offset && t !== word);
  let s = before.length - 1;
  while (s >= 0 && !(before[s]!.kind === "punct" && /[;{}]/.test(before[s]!.text))) s--;
  const stmt = before.slice(s + 1);
  const here: Here = {
    snap,
    file,
    text,
    tokens,
    offset,
    pkg: outline.package,
    path: outline.path,
    inner: outline.path[outline.path.length - 1],
    stmt,
    last: stmt[stmt.length - 1]?.text,
    prefix: word ? text.slice(word.offset, offset) : "",
    range: word ? { start: { line: word.line, character: word.character }, end: pos } : { start: pos, end: pos },
  };
  return complete(here);
}

function closed(t: Token): boolean {
  return t.text.length > 1 && t.text.endsWith(t.text[0]!);
}

function complete(h: Here): CompletionItem[] {
  const { inner, stmt, last } = h;
  const optionBlock = [...h.path].reverse().find((b) => b.kind === "option");

  // Inside `option (grpcrouter.v1.service) = { … }`.
  if (optionBlock && /grpcrouter\.v1\.(service|method)/.test(optionBlock.name)) {
    if (last === ":" && stmt[stmt.length - 2]?.text === "balancer") return edits(h, balancerItems());
    if (inner?.kind === "other" && inner.name === "routing_key") return edits(h, routingKeySources());
    if (inner === optionBlock) return edits(h, routingFields(optionBlock.name.includes("service")));
    return [];
  }
  if (optionBlock) return [];

  if (stmt[0]?.text === "import") {
    return stmt.length === 1 || (stmt.length === 2 && /^(public|weak)$/.test(last ?? "")) ? importPathItems(h.snap, h.file, h.tokens, h.range, true) : [];
  }

  // Field options: `[deprecated = true, (my.option) = …]`.
  const bracket = openBracket(stmt);
  if (bracket >= 0) return fieldOptionItems(h, inner?.kind === "enum" ? "enumValue" : "field", stmt.slice(bracket + 1));

  if (stmt[0]?.text === "option") return optionItems(h, optionsFor(h, targetOf(inner)), stmt.slice(1));

  if (inner?.kind === "service" || inner?.kind === "rpc") {
    // Types in an rpc signature: `rpc Say(` / `returns (` / `(stream `.
    if (stmt[0]?.text === "rpc" && (last === "(" || last === "stream")) return typeItems(h, { scalars: false, messagesOnly: true });
    if (stmt.length === 0)
      return [...edits(h, optionSnippets(inner, h.snap, h.file)), ...keywordItems(h, inner.kind === "service" ? ["rpc", "option"] : ["option"])];
    return [];
  }
  if (inner?.kind === "enum") {
    if (stmt.length === 0) return [...enumValueItems(h, inner), ...keywordItems(h, ["option", "reserved"])];
    if (last === "=" && stmt.length === 2) return numberItem(h, nextNumber(h, inner, true), "next free enum number");
    return [];
  }
  if (inner?.kind === "message" || inner?.kind === "oneof" || inner?.kind === "extend") {
    const mapAt = stmt.findIndex((t) => t.text === "map");
    if (mapAt >= 0 && !stmt.some((t) => t.text === ">")) {
      if (last === "<") return mapKeyItems(h);
      if (last === ",") return typeItems(h, { scalars: true, messagesOnly: false });
      return [];
    }
    if (last === "=" && stmt.length >= 3 && stmt[0]?.text !== "reserved" && stmt[0]?.text !== "extensions") {
      const message = inner.kind === "message" ? inner : [...h.path].reverse().find((b) => b.kind === "message");
      return message ? numberItem(h, nextNumber(h, message, false), "next free field number") : [];
    }
    const typePosition = stmt.length === 0 || (stmt.length === 1 && /^(repeated|optional|required)$/.test(last ?? ""));
    if (typePosition) {
      const keywords =
        stmt.length === 0 && inner.kind === "message" ? keywordItems(h, ["repeated", "optional", "map", "oneof", "message", "enum", "reserved", "option"]) : [];
      return [...typeItems(h, { scalars: true, messagesOnly: false }), ...keywords];
    }
    return [];
  }
  if (!inner && stmt.length === 0) return keywordItems(h, ["syntax", "package", "import", "option", "message", "enum", "service", "extend"]);
  if (stmt[0]?.text === "extend" && stmt.length === 1) return typeItems(h, { scalars: false, messagesOnly: true });
  return [];
}

/** Gives every item a textEdit over the typed word, so what is typed is replaced. */
function edits(h: Here, items: CompletionItem[]): CompletionItem[] {
  return items.map((i) => {
    const newText = i.insertText ?? i.label;
    const { insertText: _, ...rest } = i;
    return {
      ...rest,
      filterText: i.filterText ?? (i.insertTextFormat === InsertTextFormat.Snippet ? i.label : newText),
      textEdit: { range: h.range, newText },
    };
  });
}

function keywordItems(h: Here, words: string[]): CompletionItem[] {
  if (h.prefix.includes(".")) return [];
  return edits(
    h,
    words.map((w) => ({ label: w, kind: CompletionItemKind.Keyword, sortText: `9${w}` })),
  );
}

function targetOf(inner: Block | undefined): OptionTarget {
  switch (inner?.kind) {
    case undefined:
      return "file";
    case "message":
    case "enum":
    case "service":
    case "oneof":
      return inner.kind;
    case "rpc":
      return "method";
    default:
      return "file";
  }
}

// ---- types -----------------------------------------------------------------------------

/** A map field's synthetic entry message: declared, but no child of its message. */
function isMapEntry(snap: Snapshot | undefined, d: Decl): boolean {
  if (d.kind !== "message" || !d.name.endsWith("Entry")) return false;
  const parent = snap?.index.byFqn.get(d.fqn.slice(0, -d.name.length - 1));
  return !!parent && parent.kind === "message" && !parent.children.includes(d);
}

function typeItems(h: Here, opts: { scalars: boolean; messagesOnly: boolean }): CompletionItem[] {
  const { snap, prefix } = h;
  const items: CompletionItem[] = [];
  if (opts.scalars && !prefix.includes(".")) {
    for (const s of SCALAR_TYPES) items.push({ label: s, kind: CompletionItemKind.Keyword, sortText: `5${s}`, textEdit: { range: h.range, newText: s } });
  }
  const self = snap?.importPathOf(h.file);
  const visible = visibleFiles(self, h.tokens);
  const own = new Set(snap?.compiled.importToFile.keys() ?? []);
  const cyclic = snap && self ? importersOf(snap, self) : new Set<string>();
  let edit: TextEdit | undefined;
  const importOf = (path: string) => (edit = edit?.newText.includes(`"${path}"`) ? edit : importEdit(h.tokens, path));
  for (const d of allTypes(snap)) {
    if (opts.messagesOnly && d.kind !== "message") continue;
    if (isMapEntry(snap, d)) continue;
    const seen = visible.has(d.file);
    // Not imported yet: the module's own files (no cycles) and the well-known types. The
    // descriptor.proto types only when asked for by name: they would drown the rest.
    if (!seen) {
      const wellKnown = d.file.startsWith("google/protobuf/");
      if (!(own.has(d.file) || wellKnown) || cyclic.has(d.file)) continue;
      if (d.file === "google/protobuf/descriptor.proto" && !prefix.startsWith("google.protobuf.")) continue;
    }
    const written = spelled(prefix, h.pkg, d);
    if (written === undefined) continue;
    const item: CompletionItem = {
      label: written,
      kind: d.kind === "enum" ? CompletionItemKind.Enum : CompletionItemKind.Class,
      detail: seen ? `${d.kind} ${d.fqn}` : `${d.kind} ${d.fqn} (adds import "${d.file}")`,
      documentation: d.doc ? { kind: "markdown", value: d.doc } : undefined,
      sortText: `${seen ? (written.includes(".") ? 2 : 1) : 3}${written}`,
      filterText: written,
      textEdit: { range: h.range, newText: written },
    };
    if (!seen) item.additionalTextEdits = [importOf(d.file)];
    items.push(item);
  }
  return items;
}

/**
 * How to write a type after what is typed: `.shop.v1.Money` after a leading dot, the full
 * name after a qualified prefix that starts it, else the name relative to the package.
 * Undefined when the type is not under the prefix.
 */
function spelled(prefix: string, pkg: string, d: Decl): string | undefined {
  const relative = nameFrom(pkg, d);
  if (!prefix.includes(".")) return relative;
  if (prefix.startsWith(".")) return `.${d.fqn}`.startsWith(prefix) ? `.${d.fqn}` : undefined;
  if (d.fqn.startsWith(prefix)) return d.fqn;
  if (relative.startsWith(prefix)) return relative;
  return undefined;
}

function mapKeyItems(h: Here): CompletionItem[] {
  return MAP_KEY_TYPES.map((t) => ({
    label: t,
    kind: CompletionItemKind.Keyword,
    detail: "map key type",
    filterText: t,
    textEdit: { range: h.range, newText: t },
  }));
}

// ---- imports ---------------------------------------------------------------------------

function importPathItems(snap: Snapshot | undefined, file: string, tokens: Token[], range: Range, quote: boolean): CompletionItem[] {
  const self = snap?.importPathOf(file);
  const already = new Set(importsOf(tokens).map((i) => i.path));
  const paths = new Map<string, string>();
  for (const p of snap?.compiled.importToFile.keys() ?? []) paths.set(p, "module file");
  for (const p of snap?.compiled.sources.keys() ?? []) paths.set(p, "grpcrouter");
  for (const p of wellKnownImports()) paths.set(p, "well-known types");
  const items: CompletionItem[] = [];
  for (const [p, detail] of paths) {
    if (p === self || already.has(p)) continue;
    const newText = quote ? `"${p}";` : p;
    items.push({
      label: p,
      kind: CompletionItemKind.File,
      detail,
      sortText: `${detail === "module file" ? 1 : 2}${p}`,
      filterText: quote ? `"${p}"` : p,
      textEdit: { range, newText },
    });
  }
  return items;
}

// ---- options ---------------------------------------------------------------------------

/** Index in `stmt` of a `[` not closed yet, or -1. */
function openBracket(stmt: Token[]): number {
  let at = -1;
  for (let k = 0; k < stmt.length; k++) {
    if (stmt[k]!.text === "[") at = k;
    else if (stmt[k]!.text === "]") at = -1;
  }
  return at;
}

function optionsFor(h: Here, target: OptionTarget): OptionInfo[] {
  return [...standardOptions(target), ...customOptions(h.snap, target)];
}

/** The option a head of tokens names: `deprecated`, `(grpcrouter.v1.method)`. */
function optionNamed(options: OptionInfo[], head: Token[]): OptionInfo | undefined {
  const text = head.map((t) => t.text).join("");
  const custom = /^\(\.?([\w.]+)\)/.exec(text);
  if (custom) return options.find((o) => o.custom && (o.name === custom[1] || o.name.endsWith(`.${custom[1]}`)));
  return options.find((o) => !o.custom && o.name === text);
}

/** After `option ` or `[`: names; after `option name =`: its values. */
function optionItems(h: Here, options: OptionInfo[], head: Token[]): CompletionItem[] {
  const eq = head.findIndex((t) => t.text === "=");
  if (eq >= 0) return eq === head.length - 1 ? valueItems(h, optionNamed(options, head.slice(0, eq))) : [];
  if (head.length === 0) return optionNameItems(h, options, false);
  if (head.length === 1 && head[0]!.text === "(")
    return optionNameItems(
      h,
      options.filter((o) => o.custom),
      true,
    );
  return [];
}

function fieldOptionItems(h: Here, target: OptionTarget, segment: Token[]): CompletionItem[] {
  // The part after the last `,` of the brackets.
  const head = segment.slice(segment.map((t) => t.text).lastIndexOf(",") + 1);
  return optionItems(h, optionsFor(h, target), head);
}

function optionNameItems(h: Here, options: OptionInfo[], afterParen: boolean): CompletionItem[] {
  const self = h.snap?.importPathOf(h.file);
  const visible = visibleFiles(self, h.tokens);
  return options.map((o) => {
    const name = o.custom ? (afterParen ? o.name : `(${o.name})`) : o.name;
    const item: CompletionItem = {
      label: name,
      kind: CompletionItemKind.Property,
      detail: o.type,
      sortText: `${o.custom ? 1 : 2}${o.name}`,
      filterText: name,
      textEdit: { range: h.range, newText: name },
    };
    if (o.custom && o.file && !visible.has(o.file)) {
      item.detail = `${o.type} (adds import "${o.file}")`;
      item.additionalTextEdits = [importEdit(h.tokens, o.file)];
    }
    return item;
  });
}

function valueItems(h: Here, option: OptionInfo | undefined): CompletionItem[] {
  if (!option) return [];
  return option.values.map((v) => ({
    label: v,
    kind: v === "true" || v === "false" ? CompletionItemKind.Keyword : CompletionItemKind.EnumMember,
    detail: option.type,
    filterText: v,
    textEdit: { range: h.range, newText: v },
  }));
}

// ---- numbers and enum values -------------------------------------------------------------

/**
 * The next free number in a message (its fields and those of its oneofs, not its nested
 * types) or an enum, read from the buffer: one past the highest, skipping reserved ranges.
 */
function nextNumber(h: Here, block: Block, isEnum: boolean): number {
  const used: number[] = [];
  const ranges: [number, number][] = [];
  let depth = 0;
  let stmtStart = -1;
  const inBlock = h.tokens.filter((t) => t.offset > block.open && t.offset < block.close);
  let head: Token[] = [];
  for (const t of inBlock) {
    if (t.text === "{") {
      // Oneofs hold fields of this message; any other block is another scope.
      depth += head[0]?.text === "oneof" && depth === 0 ? 0 : 1;
      head = [];
      continue;
    }
    if (t.text === "}") {
      depth = Math.max(0, depth - 1);
      head = [];
      continue;
    }
    if (depth > 0) continue;
    if (t.text === ";") {
      record(head, used, ranges, h.offset, stmtStart);
      head = [];
      continue;
    }
    if (!head.length) stmtStart = t.offset;
    head.push(t);
  }
  if (isEnum) return used.length ? Math.max(...used) + 1 : 0;
  let n = used.length ? Math.max(...used) + 1 : 1;
  const taken = (x: number) => ranges.some(([a, b]) => x >= a && x <= b) || (x >= RESERVED_FOR_PROTOBUF[0] && x <= RESERVED_FOR_PROTOBUF[1]);
  while (taken(n) && n < MAX_FIELD_NUMBER) n++;
  return n;
}

/** Reads one statement: a field's number, or `reserved`/`extensions` numbers and ranges. */
function record(head: Token[], used: number[], ranges: [number, number][], cursor: number, start: number): void {
  if (head[0]?.text === "reserved" || head[0]?.text === "extensions") {
    for (let k = 1; k < head.length; k++) {
      const a = Number(head[k]!.text);
      if (!Number.isInteger(a)) continue;
      if (head[k + 1]?.text === "to") {
        const b = head[k + 2]?.text === "max" ? MAX_FIELD_NUMBER : Number(head[k + 2]?.text);
        ranges.push([a, Number.isInteger(b) ? b : a]);
        k += 2;
      } else ranges.push([a, a]);
    }
    return;
  }
  // The statement being typed has no number yet (or one the user is changing).
  if (start <= cursor && cursor <= (head[head.length - 1]?.end ?? start)) return;
  const eq = head.findIndex((t) => t.text === "=");
  const n = Number(head[eq + 1]?.text);
  if (eq > 0 && head[0]?.text !== "option" && Number.isInteger(n)) used.push(n);
}

function numberItem(h: Here, n: number, detail: string): CompletionItem[] {
  const space = h.text[h.offset - 1] === "=" ? " " : "";
  const rest = h.text.slice(h.offset, h.text.indexOf("\n", h.offset) < 0 ? undefined : h.text.indexOf("\n", h.offset));
  const semi = rest.trim().startsWith(";") || rest.trim().startsWith("[") ? "" : ";";
  return [
    {
      label: String(n),
      kind: CompletionItemKind.Value,
      detail,
      preselect: true,
      sortText: "0",
      filterText: String(n),
      textEdit: { range: h.range, newText: `${space}${n}${semi}` },
    },
  ];
}

/** `OrderStatus` → `ORDER_STATUS`, the prefix buf's lint wants on enum values. */
export function upperSnake(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .replace(/([A-Z]+)([A-Z][a-z])/g, "$1_$2")
    .toUpperCase();
}

function enumValueItems(h: Here, block: Block): CompletionItem[] {
  const values = h.tokens.filter(
    (t, k) =>
      t.offset > block.open && t.offset < block.close && t.kind === "ident" && h.tokens[k + 1]?.text === "=" && /[;{]/.test(h.tokens[k - 1]?.text ?? ""),
  );
  const prefix = `${upperSnake(block.name)}_`;
  const next = nextNumber(h, block, true);
  const items: CompletionItem[] = [];
  const typing = (v: Token) => v.line === h.range.start.line && v.character === h.range.start.character;
  if (!values.some((v) => !typing(v))) {
    items.push({
      label: `${prefix}UNSPECIFIED = 0;`,
      kind: CompletionItemKind.EnumMember,
      detail: "the zero value, meaning unset",
      sortText: "0",
      filterText: `${prefix}UNSPECIFIED`,
      textEdit: { range: h.range, newText: `${prefix}UNSPECIFIED = 0;` },
    });
  }
  items.push({
    label: prefix,
    kind: CompletionItemKind.EnumMember,
    detail: `next value, = ${next}`,
    insertTextFormat: InsertTextFormat.Snippet,
    sortText: "1",
    filterText: prefix,
    textEdit: { range: h.range, newText: `${prefix}\${1:NAME} = ${next};` },
  });
  return items;
}

// ---- grpcrouter's routing options ------------------------------------------------------------

function optionSnippets(inner: Block, snap: Snapshot | undefined, file: string): CompletionItem[] {
  const imp = snap?.importPathOf(file);
  const imported = !!imp && !!snap?.index.files.get(imp)?.imports.some((i) => i.path === OPTIONS_IMPORT);
  const note = imported ? "" : `\n\nNeeds \`import "${OPTIONS_IMPORT}";\``;
  if (inner.kind === "service") {
    return [
      {
        label: "option (grpcrouter.v1.service)",
        kind: CompletionItemKind.Snippet,
        insertTextFormat: InsertTextFormat.Snippet,
        insertText:
          'option (grpcrouter.v1.service) = {\n  routing_key: { ${1|field,metadata|}: "$2" }\n  balancer: ${3|BALANCER_ROUND_ROBIN,BALANCER_WEIGHTED_ROUND_ROBIN,BALANCER_LEAST_OUTSTANDING,BALANCER_CONSISTENT_HASH|}\n};',
        documentation: { kind: "markdown", value: `Routing for every method of the service.${note}` },
        sortText: "0",
      },
    ];
  }
  return [
    {
      label: "option (grpcrouter.v1.method)",
      kind: CompletionItemKind.Snippet,
      insertTextFormat: InsertTextFormat.Snippet,
      insertText: 'option (grpcrouter.v1.method) = { routing_key: { ${1|field,metadata|}: "$2" } };',
      documentation: { kind: "markdown", value: `This method's own routing key.${note}` },
      sortText: "0",
    },
  ];
}

function routingFields(service: boolean): CompletionItem[] {
  const items: CompletionItem[] = [
    {
      label: "routing_key",
      kind: CompletionItemKind.Field,
      detail: "grpcrouter.v1.RoutingKey",
      documentation: "Where the routing key of a call comes from: a request field path or a metadata key.",
    },
  ];
  if (service)
    items.push({
      label: "balancer",
      kind: CompletionItemKind.Field,
      detail: "grpcrouter.v1.Balancer",
      documentation: "The strategy that picks an instance for a call.",
    });
  return items;
}

function routingKeySources(): CompletionItem[] {
  return [
    { label: "field", kind: CompletionItemKind.Field, detail: "string", documentation: 'A dotted path of singular fields of the request, e.g. "customer.id".' },
    { label: "metadata", kind: CompletionItemKind.Field, detail: "string", documentation: 'A request metadata key, e.g. "x-tenant".' },
  ];
}

function balancerItems(): CompletionItem[] {
  return BALANCERS.map(([label, doc]) => ({ label, kind: CompletionItemKind.EnumMember, detail: "grpcrouter.v1.Balancer", documentation: doc }));
}
