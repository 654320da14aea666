// Completion: message and enum types visible at the cursor, and grpcrouter's routing options
// where they apply. The context (inside which block, after which tokens) comes from the
// current buffer, the types from the last good compile.
import { CompletionItemKind, InsertTextFormat, type CompletionItem } from "vscode-languageserver";
import { SCALAR_TYPES } from "../analysis/protoIndex.js";
import type { Snapshot } from "../analysis/snapshot.js";
import { offsetAt, outlineAt, tokenize, type Block, type Position } from "../analysis/tokenizer.js";

const BALANCERS: [string, string][] = [
  ["BALANCER_ROUND_ROBIN", "each call to the next instance in turn"],
  ["BALANCER_WEIGHTED_ROUND_ROBIN", "round robin by the instances' registered weights"],
  ["BALANCER_LEAST_OUTSTANDING", "the instance with the fewest calls in flight"],
  ["BALANCER_CONSISTENT_HASH", "the same routing key goes to the same instance (bounded load)"],
];

const OPTIONS_IMPORT = "grpcrouter/v1/options.proto";

export function completion(snap: Snapshot | undefined, file: string, text: string, pos: Position): CompletionItem[] {
  const offset = offsetAt(text, pos);
  const tokens = tokenize(text);
  const outline = outlineAt(tokens, offset);
  // Tokens of the current statement before the cursor (the word being typed excluded).
  const before = tokens.filter((t) => t.end <= offset || (t.offset < offset && t.kind !== "ident"));
  let s = before.length - 1;
  while (s >= 0 && !(before[s]!.kind === "punct" && /[;{}]/.test(before[s]!.text))) s--;
  const stmt = before.slice(s + 1).filter((t) => t.end < offset || !(t.kind === "ident" && t.end === offset));
  const last = stmt[stmt.length - 1]?.text;
  const inner = outline.path[outline.path.length - 1];
  const optionBlock = [...outline.path].reverse().find((b) => b.kind === "option");

  // Inside `option (grpcrouter.v1.service) = { … }`.
  if (optionBlock && /grpcrouter\.v1\.(service|method)/.test(optionBlock.name)) {
    if (last === ":" && stmt[stmt.length - 2]?.text === "balancer") return balancerItems();
    if (inner?.kind === "other" && inner.name === "routing_key") return routingKeySources();
    if (inner === optionBlock) return routingFields(optionBlock.name.includes("service"));
    return [];
  }
  // `option (` … : the extension names of the block we are in.
  const optionHead = stmt[0]?.text === "option";
  if (optionHead && stmt.some((t) => t.text === "(") && !stmt.some((t) => t.text === ")")) {
    return optionNames(inner);
  }
  if (optionHead && last === "=" ) return [];
  if (inner?.kind === "service" || inner?.kind === "rpc") {
    // Types in an rpc signature: `rpc Say(` / `returns (` / `(stream `.
    if (stmt[0]?.text === "rpc" && (last === "(" || last === "stream")) return typeItems(snap, file, outline.package, false);
    if (stmt.length === 0) return [...optionSnippets(inner, snap, file), ...keywordItems(inner.kind === "service" ? ["rpc", "option"] : ["option"])];
    return [];
  }
  if (inner?.kind === "message" || inner?.kind === "oneof" || inner?.kind === "extend") {
    const typePosition = stmt.length === 0 || (stmt.length === 1 && /^(repeated|optional|required)$/.test(last ?? "")) || last === "," || last === "<";
    if (typePosition) {
      const keywords = stmt.length === 0 && inner.kind === "message" ? keywordItems(["repeated", "optional", "map", "oneof", "message", "enum", "reserved", "option"]) : [];
      return [...typeItems(snap, file, outline.package, true), ...keywords];
    }
    return [];
  }
  if (!inner && stmt.length === 0) {
    return keywordItems(["syntax", "package", "import", "option", "message", "enum", "service"]);
  }
  return [];
}

function keywordItems(words: string[]): CompletionItem[] {
  return words.map((w) => ({ label: w, kind: CompletionItemKind.Keyword, sortText: `9${w}` }));
}

function typeItems(snap: Snapshot | undefined, file: string, pkg: string, scalars: boolean): CompletionItem[] {
  const items: CompletionItem[] = [];
  if (scalars) for (const s of SCALAR_TYPES) items.push({ label: s, kind: CompletionItemKind.Keyword, sortText: `5${s}` });
  const imp = snap?.importPathOf(file);
  if (!snap || !imp) return items;
  for (const d of snap.index.typesVisibleFrom(imp)) {
    // Same package: the short name (relative to the package) is what users write.
    const label = pkg && d.fqn.startsWith(`${pkg}.`) ? d.fqn.slice(pkg.length + 1) : d.fqn;
    items.push({
      label,
      kind: d.kind === "enum" ? CompletionItemKind.Enum : CompletionItemKind.Class,
      detail: `${d.kind} ${d.fqn}`,
      documentation: d.doc ? { kind: "markdown", value: d.doc } : undefined,
      sortText: `${label.includes(".") ? 2 : 1}${label}`,
    });
  }
  return items;
}

function optionNames(inner: Block | undefined): CompletionItem[] {
  const names: [string, string][] = [];
  if (inner?.kind === "service") names.push(["grpcrouter.v1.service", "How the router routes every method of this service (routing key, balancer)"]);
  if (inner?.kind === "rpc") names.push(["grpcrouter.v1.method", "How the router routes this method (its own routing key)"]);
  return names.map(([label, doc]) => ({ label, kind: CompletionItemKind.Property, documentation: doc }));
}

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
        insertText: 'option (grpcrouter.v1.service) = {\n  routing_key: { ${1|field,metadata|}: "$2" }\n  balancer: ${3|BALANCER_ROUND_ROBIN,BALANCER_WEIGHTED_ROUND_ROBIN,BALANCER_LEAST_OUTSTANDING,BALANCER_CONSISTENT_HASH|}\n};',
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
    { label: "routing_key", kind: CompletionItemKind.Field, detail: "grpcrouter.v1.RoutingKey", documentation: "Where the routing key of a call comes from: a request field path or a metadata key." },
  ];
  if (service) items.push({ label: "balancer", kind: CompletionItemKind.Field, detail: "grpcrouter.v1.Balancer", documentation: "The strategy that picks an instance for a call." });
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
