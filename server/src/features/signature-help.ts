// Signature-like help inside options: in a field's `[ … ]` the options it can take, with the
// one being written highlighted; in `option (x) = { … }` the fields of the option's message.
import type { SignatureHelp, SignatureInformation } from "vscode-languageserver";
import { customOptions, standardOptions, type OptionInfo } from "../analysis/options.js";
import type { Snapshot } from "../analysis/snapshot.js";
import { offsetAt, outlineAt, tokenize, type Position, type Token } from "../analysis/tokenizer.js";

export const SIGNATURE_TRIGGERS = ["[", ",", "{", ":"];

export function signatureHelp(snap: Snapshot | undefined, text: string, pos: Position): SignatureHelp | undefined {
  const offset = offsetAt(text, pos);
  const tokens = tokenize(text);
  const outline = outlineAt(tokens, offset);
  const inner = outline.path[outline.path.length - 1];
  const stmt = statementBefore(tokens, offset);

  // `option (grpcrouter.v1.service) = { routing_key: … }`: the option message's fields.
  const aggregate = [...outline.path].reverse().find((b) => b.kind === "option");
  if (aggregate && aggregate === inner) {
    const name = /^\(\.?([\w.]+)\)$/.exec(aggregate.name)?.[1];
    const all = (["file", "message", "field", "enum", "enumValue", "service", "method", "oneof"] as const).flatMap((t) => customOptions(snap, t));
    const option = name ? all.find((o) => o.name === name || o.name.endsWith(`.${name}`)) : undefined;
    if (!option?.fields?.length) return undefined;
    // The key being written: the last `name:` (text format needs no separators between entries).
    const key = stmt.filter((t, k) => t.kind === "ident" && (stmt[k + 1]?.text === ":" || k === stmt.length - 1)).pop()?.text;
    return one(
      `(${option.name}) = { ${option.fields.map((f) => `${f.name}: ${f.type}`).join("; ")} }`,
      option.fields.map((f) => `${f.name}: ${f.type}`),
      option.fields.findIndex((f) => f.name === key),
    );
  }

  // A field's (or enum value's) options: inside a `[` not closed yet.
  let open = -1;
  stmt.forEach((t, k) => {
    if (t.text === "[") open = k;
    else if (t.text === "]") open = -1;
  });
  if (open < 0) return undefined;
  const target = inner?.kind === "enum" ? "enumValue" : "field";
  const options: OptionInfo[] = [...standardOptions(target), ...customOptions(snap, target)];
  const segment = stmt.slice(open + 1);
  const head = segment.slice(segment.map((t) => t.text).lastIndexOf(",") + 1);
  const written = head
    .map((t) => t.text)
    .join("")
    .split("=")[0]!
    .replace(/^\(|\)$/g, "");
  const label = (o: OptionInfo) => `${o.custom ? `(${o.name})` : o.name} = ${o.type}`;
  const active = written ? options.findIndex((o) => o.name === written || o.name.endsWith(`.${written}`) || o.name.startsWith(written)) : -1;
  return one(`[${options.map(label).join(", ")}]`, options.map(label), active, target === "field" ? "field options" : "enum value options");
}

/** Tokens of the statement before the cursor (back to the last `;`, `{` or `}`), the word typed included. */
function statementBefore(tokens: Token[], offset: number): Token[] {
  const before = tokens.filter((t) => t.offset < offset);
  let s = before.length - 1;
  while (s >= 0 && !(before[s]!.kind === "punct" && /[;{}]/.test(before[s]!.text))) s--;
  return before.slice(s + 1);
}

function one(label: string, params: string[], active: number, doc?: string): SignatureHelp {
  // Parameters as offsets into the label, so the editor can underline the active one.
  let from = 0;
  const parameters = params.map((p) => {
    const at = label.indexOf(p, from);
    from = at + p.length;
    return { label: [at, at + p.length] as [number, number] };
  });
  const signature: SignatureInformation = { label, parameters, ...(doc ? { documentation: doc } : {}) };
  return { signatures: [signature], activeSignature: 0, activeParameter: Math.max(active, 0) };
}
