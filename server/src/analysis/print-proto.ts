// Prints a FileDescriptorProto back as readable .proto text, with the comments its
// SourceCodeInfo carries, and records where each declaration lands in the printed text. The
// language server uses it for files that are compiled but not on disk (the well-known types,
// which buf carries built in), so "go to definition" can open them at the declaration.
//
// The output is deterministic (same descriptor → same text): elements keep the order of the
// original file (by their spans), options are printed in schema order.
import { isFieldSet, type DescField, type DescMessage, type Message } from "@bufbuild/protobuf";
import { nestedTypes, reflect, type ReflectMessage } from "@bufbuild/protobuf/reflect";
import { FieldDescriptorProto_Label, FieldDescriptorProto_Type, FieldDescriptorProtoSchema, file_google_protobuf_descriptor } from "@bufbuild/protobuf/wkt";
import type {
  DescriptorProto,
  EnumDescriptorProto,
  FieldDescriptorProto,
  FileDescriptorProto,
  ServiceDescriptorProto,
  SourceCodeInfo_Location,
} from "@bufbuild/protobuf/wkt";
import { ENUM, FILE, MESSAGE, ONEOF, scalarKeyword, SERVICE } from "./descriptor-fields.js";
import type { Range } from "./proto-index.js";

export interface PrintedProto {
  text: string;
  /** Fully-qualified name (as ProtoIndex spells it) → range of its header, e.g. `message Timestamp`. */
  names: Map<string, Range>;
  /** The header of the first top-level declaration: where an import of the file lands. */
  first?: Range;
}

// descriptor.proto's field numbers (SourceCodeInfo paths) and enums, from protobuf-es.
const F = FILE;
const M = MESSAGE;
const E = ENUM;
const S = SERVICE;
const O = ONEOF;
const T = FieldDescriptorProto_Type;
const L = FieldDescriptorProto_Label;
/** The largest field number; `extensions 1000 to max` (ranges are end-exclusive). */
const MAX_FIELD = 536870911;
const INDENT = "  ";

type Path = number[];

// descriptor.proto is proto2: an unset optional field reads as its default (0, ""), so
// presence must be asked for, not inferred from the value.
const FD = FieldDescriptorProtoSchema.field;
const oneofOf = (fd: FieldDescriptorProto) => (isFieldSet(fd, FD.oneofIndex) && !fd.proto3Optional ? fd.oneofIndex : undefined);

class Writer {
  readonly lines: string[] = [];
  line(depth: number, text = ""): number {
    this.lines.push(text === "" ? "" : INDENT.repeat(depth) + text);
    return this.lines.length - 1;
  }
  /** Range of `text.slice(from, to)` on line `at` printed at `depth`. */
  range(at: number, depth: number, from: number, to: number): Range {
    const base = INDENT.repeat(depth).length;
    return { start: { line: at, character: base + from }, end: { line: at, character: base + to } };
  }
}

export function printProto(file: FileDescriptorProto): PrintedProto {
  const locs = new Map<string, SourceCodeInfo_Location>();
  // A path may have several locations (one per `option` statement); the first is the element.
  for (const loc of file.sourceCodeInfo?.location ?? []) if (!locs.has(loc.path.join(","))) locs.set(loc.path.join(","), loc);
  const at = (p: Path) => locs.get(p.join(","));
  const w = new Writer();
  const names = new Map<string, Range>();
  const pkg = file.package;
  const editions = file.syntax === "editions";
  const proto2 = file.syntax === "" || file.syntax === "proto2";
  let first: Range | undefined;

  /** Comments before an element: detached blocks (each followed by a blank line), then leading. */
  const leading = (p: Path, depth: number) => {
    const loc = at(p);
    if (!loc) return;
    // A commented element gets air above it, unless it opens a block.
    const prev = w.lines[w.lines.length - 1];
    if ((loc.leadingComments || loc.leadingDetachedComments.length) && prev !== undefined && prev !== "" && !prev.endsWith("{")) w.line(depth);
    for (const block of loc.leadingDetachedComments) {
      commentLines(block).forEach((l) => w.line(depth, l));
      w.line(depth);
    }
    // Unset comments read as "" (proto2 defaults); an empty comment is no loss.
    if (loc.leadingComments) commentLines(loc.leadingComments).forEach((l) => w.line(depth, l));
  };
  /** A trailing comment: on the element's line when it is one line, else on the lines after it. */
  const trailing = (p: Path, depth: number, lineIndex: number) => {
    const text = at(p)?.trailingComments;
    if (!text) return;
    const lines = commentLines(text);
    if (lines.length === 1) w.lines[lineIndex] += ` ${lines[0]}`;
    else lines.forEach((l) => w.line(depth, l));
  };
  /** One statement or header line: comments, the line, and the range of `decl` in it (keyword … name). */
  const statement = (p: Path, depth: number, text: string | string[], decl?: { fqn: string; from: number; to: number }): number => {
    leading(p, depth);
    const [head, ...more] = typeof text === "string" ? [text] : text;
    const line = w.line(depth, head);
    for (const l of more) w.line(depth, l);
    if (decl) {
      const r = w.range(line, depth, decl.from, decl.to);
      names.set(decl.fqn, r);
      if (depth === 0 && !first) first = r;
    }
    trailing(p, depth, line + more.length);
    return line;
  };
  const header = (p: Path, depth: number, keyword: string, name: string, fqn: string, rest = " {") =>
    statement(p, depth, `${keyword} ${name}${rest}`, { fqn, from: 0, to: keyword.length + 1 + name.length });

  // Source order: elements sort by where they started in the original file; those without a
  // span keep their relative order after the others.
  const ordered = <T>(items: { item: T; path: Path }[]) =>
    items
      .map((x, i) => ({ ...x, i, span: at(x.path)?.span }))
      .sort((a, b) => (a.span && b.span ? a.span[0]! - b.span[0]! || a.span[1]! - b.span[1]! : a.span ? -1 : b.span ? 1 : a.i - b.i))
      .map(({ item, path }) => ({ item, path }));

  const typeRef = (typeName: string) => {
    const n = typeName.replace(/^\./, "");
    return pkg && n.startsWith(`${pkg}.`) ? n.slice(pkg.length + 1) : n;
  };

  const optionStatements = (options: Message | undefined, p: Path, depth: number, skip: string[] = []) => {
    for (const o of optionEntries(options)) {
      if (skip.includes(o.name)) continue;
      statement([...p, o.number], depth, `option ${o.name} = ${o.value};`);
    }
  };

  const fieldLine = (fd: FieldDescriptorProto, mapEntries: Map<string, DescriptorProto>, inOneof: boolean): string => {
    let type: string;
    const entry = fd.typeName ? mapEntries.get(fd.typeName.replace(/^\./, "")) : undefined;
    let label = "";
    if (entry && fd.label === L.REPEATED) {
      const [k, v] = [entry.field.find((x) => x.number === 1), entry.field.find((x) => x.number === 2)];
      type = `map<${k ? fieldType(k) : "?"}, ${v ? fieldType(v) : "?"}>`;
    } else {
      type = fieldType(fd);
      if (fd.label === L.REPEATED) label = "repeated ";
      else if (!inOneof && !editions) {
        if (fd.label === L.REQUIRED) label = "required ";
        // proto2 spells every singular field's label, proto3 only explicit `optional`.
        else if (fd.proto3Optional || (proto2 && fd.label === L.OPTIONAL)) label = "optional ";
      }
    }
    return `${label}${type} ${fd.name}`;
  };
  const fieldType = (fd: FieldDescriptorProto) =>
    fd.type === T.MESSAGE || fd.type === T.ENUM || fd.type === T.GROUP ? typeRef(fd.typeName) : (scalarKeyword(fd.type) ?? "?");

  const fieldOptions = (fd: FieldDescriptorProto): string[] => {
    const opts: string[] = [];
    if (isFieldSet(fd, FD.defaultValue)) opts.push(`default = ${defaultLiteral(fd)}`);
    if (isFieldSet(fd, FD.jsonName) && fd.jsonName !== jsonNameOf(fd.name) && !fd.extendee) opts.push(`json_name = ${quote(fd.jsonName)}`);
    for (const o of optionEntries(fd.options)) opts.push(`${o.name} = ${o.value}`);
    return opts;
  };

  const printField = (fd: FieldDescriptorProto, p: Path, depth: number, scope: string, mapEntries: Map<string, DescriptorProto>, inOneof: boolean) => {
    const head = fieldLine(fd, mapEntries, inOneof);
    statement(p, depth, bracketed(`${head} = ${fd.number}`, fieldOptions(fd), depth), { fqn: `${scope}.${fd.name}`, from: 0, to: head.length });
  };

  const printExtensions = (exts: { item: FieldDescriptorProto; path: Path }[], depth: number, scope: string) => {
    // One `extend` block per extendee, in the order the extensions come.
    const groups = new Map<string, { item: FieldDescriptorProto; path: Path }[]>();
    for (const x of exts) groups.set(x.item.extendee, [...(groups.get(x.item.extendee) ?? []), x]);
    for (const [extendee, list] of groups) {
      w.line(depth, `extend ${typeRef(extendee)} {`);
      for (const { item, path } of list) printField(item, path, depth + 1, scope, new Map(), false);
      w.line(depth, "}");
    }
  };

  const reservedLines = (
    ranges: { start?: number; end?: number }[],
    reservedNames: string[],
    p: Path,
    rangeField: number,
    nameField: number,
    depth: number,
    inclusiveEnd: boolean,
  ) => {
    if (ranges.length) {
      const parts = ranges.map((r) => {
        const start = r.start ?? 0;
        const end = (r.end ?? 0) - (inclusiveEnd ? 0 : 1);
        return start === end ? `${start}` : `${start} to ${end >= MAX_FIELD || (inclusiveEnd && end === 2147483647) ? "max" : end}`;
      });
      statement([...p, rangeField], depth, `reserved ${parts.join(", ")};`);
    }
    if (reservedNames.length) statement([...p, nameField], depth, `reserved ${reservedNames.map((n) => (editions ? n : quote(n))).join(", ")};`);
  };

  const printEnum = (e: EnumDescriptorProto, p: Path, depth: number, parent: string) => {
    const fqn = parent ? `${parent}.${e.name}` : e.name;
    header(p, depth, "enum", e.name, fqn);
    optionStatements(e.options, [...p, E.options], depth + 1);
    e.value.forEach((v, i) => {
      const vp = [...p, E.value, i];
      const opts = optionEntries(v.options).map((o) => `${o.name} = ${o.value}`);
      // Enum values are siblings of their enum in protobuf scoping.
      statement(vp, depth + 1, bracketed(`${v.name} = ${v.number}`, opts, depth + 1), {
        fqn: parent ? `${parent}.${v.name}` : v.name,
        from: 0,
        to: v.name.length,
      });
    });
    reservedLines(e.reservedRange, e.reservedName, p, E.reservedRange, E.reservedName, depth + 1, true);
    w.line(depth, "}");
  };

  const printMessage = (m: DescriptorProto, p: Path, depth: number, parent: string) => {
    const fqn = parent ? `${parent}.${m.name}` : m.name;
    header(p, depth, "message", m.name, fqn);
    optionStatements(m.options, [...p, M.options], depth + 1, ["map_entry"]);
    const mapEntries = new Map<string, DescriptorProto>();
    for (const n of m.nestedType) if (n.options?.mapEntry) mapEntries.set(`${fqn}.${n.name}`, n);

    type Item =
      | { kind: "field"; fd: FieldDescriptorProto }
      | { kind: "oneof"; index: number }
      | { kind: "nested"; msg: DescriptorProto }
      | { kind: "enum"; e: EnumDescriptorProto }
      | { kind: "extRange"; index: number };
    const items: { item: Item; path: Path }[] = [];
    const seenOneofs = new Set<number>();
    m.field.forEach((fd, i) => {
      const oneof = oneofOf(fd);
      if (oneof === undefined) return items.push({ item: { kind: "field", fd }, path: [...p, M.field, i] });
      // A oneof stands where the oneof was declared (or, without a span, its first field).
      if (seenOneofs.has(oneof)) return;
      seenOneofs.add(oneof);
      const oneofPath = [...p, M.oneofDecl, oneof];
      items.push({ item: { kind: "oneof", index: oneof }, path: at(oneofPath) ? oneofPath : [...p, M.field, i] });
    });
    m.nestedType.forEach((n, i) => {
      if (!n.options?.mapEntry) items.push({ item: { kind: "nested", msg: n }, path: [...p, M.nestedType, i] });
    });
    m.enumType.forEach((e, i) => items.push({ item: { kind: "enum", e }, path: [...p, M.enumType, i] }));
    m.extensionRange.forEach((_, i) => items.push({ item: { kind: "extRange", index: i }, path: [...p, M.extensionRange, i] }));

    for (const { item, path } of ordered(items)) {
      if (item.kind === "field") printField(item.fd, path, depth + 1, fqn, mapEntries, false);
      else if (item.kind === "nested") printMessage(item.msg, path, depth + 1, fqn);
      else if (item.kind === "enum") printEnum(item.e, path, depth + 1, fqn);
      else if (item.kind === "extRange") {
        const r = m.extensionRange[item.index]!;
        const end = (r.end ?? 0) - 1;
        const opts = optionEntries(r.options).map((o) => `${o.name} = ${o.value}`);
        const range = r.start === end ? `${r.start}` : `${r.start} to ${end >= MAX_FIELD ? "max" : end}`;
        statement(path, depth + 1, bracketed(`extensions ${range}`, opts, depth + 1));
      } else {
        const o = m.oneofDecl[item.index]!;
        const op = [...p, M.oneofDecl, item.index];
        header(op, depth + 1, "oneof", o.name, `${fqn}.${o.name}`);
        optionStatements(o.options, [...op, O.options], depth + 2);
        m.field.forEach((fd, i) => {
          if (oneofOf(fd) === item.index) printField(fd, [...p, M.field, i], depth + 2, fqn, mapEntries, true);
        });
        w.line(depth + 1, "}");
      }
    }
    reservedLines(m.reservedRange, m.reservedName, p, M.reservedRange, M.reservedName, depth + 1, false);
    printExtensions(
      m.extension.map((item, i) => ({ item, path: [...p, M.extension, i] })),
      depth + 1,
      fqn,
    );
    w.line(depth, "}");
  };

  const printService = (s: ServiceDescriptorProto, p: Path) => {
    const fqn = pkg ? `${pkg}.${s.name}` : s.name;
    header(p, 0, "service", s.name, fqn);
    optionStatements(s.options, [...p, S.options], 1);
    s.method.forEach((md, i) => {
      const mp = [...p, S.method, i];
      const opts = optionEntries(md.options);
      const sig = `rpc ${md.name}(${md.clientStreaming ? "stream " : ""}${typeRef(md.inputType)}) returns (${md.serverStreaming ? "stream " : ""}${typeRef(md.outputType)})`;
      statement(mp, 1, `${sig}${opts.length ? " {" : ";"}`, { fqn: `${fqn}.${md.name}`, from: 0, to: `rpc ${md.name}`.length });
      if (opts.length) {
        for (const o of opts) w.line(2, `option ${o.name} = ${o.value};`);
        w.line(1, "}");
      }
    });
    w.line(0, "}");
  };

  // ---- the file ----
  statement(
    [editions ? F.edition : F.syntax],
    0,
    editions ? `edition = ${quote(editionName(file.edition))};` : `syntax = ${quote(proto2 ? "proto2" : file.syntax)};`,
  );
  if (pkg) {
    w.line(0);
    statement([F.package], 0, `package ${pkg};`);
  }
  if (file.dependency.length) w.line(0);
  file.dependency.forEach((d, i) => {
    const kind = file.publicDependency.includes(i) ? "public " : file.weakDependency.includes(i) ? "weak " : "";
    statement([F.dependency, i], 0, `import ${kind}${quote(d)};`);
  });
  const fileOptions = optionEntries(file.options);
  if (fileOptions.length) w.line(0);
  for (const o of fileOptions) statement([F.options, o.number], 0, `option ${o.name} = ${o.value};`);

  type Top = { kind: "message"; m: DescriptorProto } | { kind: "enum"; e: EnumDescriptorProto } | { kind: "service"; s: ServiceDescriptorProto };
  const tops: { item: Top; path: Path }[] = [
    ...file.messageType.map((m, i) => ({ item: { kind: "message", m } as Top, path: [F.messageType, i] })),
    ...file.enumType.map((e, i) => ({ item: { kind: "enum", e } as Top, path: [F.enumType, i] })),
    ...file.service.map((s, i) => ({ item: { kind: "service", s } as Top, path: [F.service, i] })),
  ];
  for (const { item, path } of ordered(tops)) {
    w.line(0);
    if (item.kind === "message") printMessage(item.m, path, 0, pkg);
    else if (item.kind === "enum") printEnum(item.e, path, 0, pkg);
    else printService(item.s, path);
  }
  if (file.extension.length) {
    w.line(0);
    printExtensions(
      file.extension.map((item, i) => ({ item, path: [F.extension, i] })),
      0,
      pkg,
    );
  }
  return { text: `${w.lines.join("\n")}\n`, names, first };
}

/** Lines past this width put their `[options]` one a line. */
const WIDTH = 100;

/** `head [a = 1, b = 2];`, or the options one a line when that is too wide to read. */
function bracketed(head: string, options: string[], depth: number): string | string[] {
  if (!options.length) return `${head};`;
  const one = `${head} [${options.join(", ")}];`;
  if (INDENT.length * depth + one.length <= WIDTH) return one;
  return [`${head} [`, ...options.map((o, i) => `${INDENT}${o}${i < options.length - 1 ? "," : ""}`), "];"];
}

/** `// text` lines for a comment as SourceCodeInfo stores it (" Foo\n Bar\n"). */
function commentLines(text: string): string[] {
  return text
    .replace(/\n$/, "")
    .split("\n")
    .map((l) => `//${l}`.trimEnd());
}

function quote(s: string): string {
  return JSON.stringify(s);
}

/** protoc's default JSON name: snake_case → lowerCamelCase. */
function jsonNameOf(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase()).replace(/_/g, "");
}

function defaultLiteral(fd: FieldDescriptorProto): string {
  const v = fd.defaultValue ?? "";
  if (fd.type === T.STRING) return quote(v);
  // bytes defaults are stored C-escaped already.
  if (fd.type === T.BYTES) return `"${v}"`;
  return v;
}

function editionName(edition: number | undefined): string {
  // EDITION_2023 = 1000, EDITION_2024 = 1001.
  return edition === 1001 ? "2024" : "2023";
}

interface OptionEntry {
  /** Field number in the options message, for the SourceCodeInfo path. */
  number: number;
  name: string;
  value: string;
}

/**
 * The set fields of an options message as `name = value` pairs. Singular message fields are
 * flattened (`features.field_presence = EXPLICIT`); repeated fields give one entry a value.
 * Custom options (extensions) are not in the schema and are left out.
 */
function optionEntries(options: Message | undefined): OptionEntry[] {
  if (!options) return [];
  const out: OptionEntry[] = [];
  const walk = (r: ReflectMessage, prefix: string, number: number | undefined) => {
    for (const f of r.fields) {
      if (!r.isSet(f)) continue;
      const name = `${prefix}${f.name}`;
      const n = number ?? f.number;
      if (f.fieldKind === "message") {
        walk(r.get(f) as ReflectMessage, `${name}.`, n);
      } else if (f.fieldKind === "list") {
        for (const v of r.get(f) as Iterable<unknown>) out.push({ number: n, name, value: valueText(f, v) });
      } else if (f.fieldKind === "scalar" || f.fieldKind === "enum") {
        out.push({ number: n, name, value: valueText(f, r.get(f)) });
      }
    }
  };
  walk(reflect(schemaOf(options), options), "", undefined);
  return out;
}

function schemaOf(m: Message): DescMessage {
  // Options decoded by fromBinary carry their type name; descriptor.proto's schemas are in wkt.
  const s = WKT_OPTION_SCHEMAS.get(m.$typeName);
  if (!s) throw new Error(`no schema for ${m.$typeName}`);
  return s;
}

function valueText(f: DescField, v: unknown): string {
  if (f.enum) return f.enum.values.find((x) => x.number === v)?.name ?? String(v);
  if (typeof v === "string") return quote(v);
  if (v instanceof Uint8Array) return quote(Buffer.from(v).toString("latin1"));
  if (v && typeof v === "object" && "desc" in v) return messageLiteral(v as ReflectMessage);
  return String(v);
}

/** A text-format literal `{ a: 1, b: "x" }` for a message in a repeated option. */
function messageLiteral(r: ReflectMessage): string {
  const parts: string[] = [];
  for (const f of r.fields) {
    if (!r.isSet(f)) continue;
    if (f.fieldKind === "list") for (const v of r.get(f) as Iterable<unknown>) parts.push(`${f.name}: ${valueText(f, v)}`);
    else if (f.fieldKind !== "map") parts.push(`${f.name}: ${valueText(f, r.get(f))}`);
  }
  return `{ ${parts.join(", ")} }`;
}

/** Every message of descriptor.proto, by name: the options messages and what they hold. */
const WKT_OPTION_SCHEMAS = new Map<string, DescMessage>(
  [...nestedTypes(file_google_protobuf_descriptor)].filter((d): d is DescMessage => d.kind === "message").map((d) => [d.typeName, d]),
);
