// An index of the declarations of a compiled module: built from the compiler's
// FileDescriptorProtos and their SourceCodeInfo (spans and comments), it answers "what is
// declared where", "what does this name resolve to" and "what is in scope".
import { isFieldSet } from "@bufbuild/protobuf";
import { FieldDescriptorProto_Label, FieldDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { ENUM, FILE, MESSAGE, NAME, SCALAR_KEYWORDS, scalarKeyword, SERVICE } from "./descriptor-fields.js";
import type {
  DescriptorProto,
  EnumDescriptorProto,
  FieldDescriptorProto,
  FileDescriptorProto,
  ServiceDescriptorProto,
  SourceCodeInfo_Location,
} from "@bufbuild/protobuf/wkt";

export interface Range {
  start: { line: number; character: number };
  end: { line: number; character: number };
}

export type DeclKind = "message" | "enum" | "service" | "method" | "field" | "enumValue" | "oneof";

export interface MethodShape {
  inputType: string;
  outputType: string;
  clientStreaming: boolean;
  serverStreaming: boolean;
}

export interface Decl {
  kind: DeclKind;
  name: string;
  /** Fully-qualified name without the leading dot, e.g. `demo.v1.Echo.Say`. */
  fqn: string;
  /** Import path of the file that declares it, e.g. `demo/v1/echo.proto`. */
  file: string;
  /** 0-based range of the element's name, and of the whole element. */
  nameRange?: Range;
  range?: Range;
  /** The doc comment: leading comments (and a trailing one), trimmed. */
  doc: string;
  detail: string;
  children: Decl[];
  method?: MethodShape;
  /** For fields: the fully-qualified message/enum type it refers to. */
  typeName?: string;
}

export interface FileEntry {
  path: string;
  package: string;
  decls: Decl[];
  imports: { path: string; range?: Range }[];
  hasSourceInfo: boolean;
}

export const SCALAR_TYPES = SCALAR_KEYWORDS;

function spanToRange(span: number[] | undefined): Range | undefined {
  if (!span || span.length < 3) return undefined;
  const [l, c, a, b] = span as [number, number, number, number?];
  return b === undefined
    ? { start: { line: l, character: c }, end: { line: l, character: a } }
    : { start: { line: l, character: c }, end: { line: a, character: b } };
}

function cleanComment(s: string | undefined): string {
  if (!s) return "";
  return s
    .split("\n")
    .map((l) => l.replace(/^ /, ""))
    .join("\n")
    .trim();
}

export function contains(r: Range | undefined, pos: { line: number; character: number }): boolean {
  if (!r) return false;
  const after = pos.line > r.start.line || (pos.line === r.start.line && pos.character >= r.start.character);
  const before = pos.line < r.end.line || (pos.line === r.end.line && pos.character <= r.end.character);
  return after && before;
}

export class ProtoIndex {
  readonly files = new Map<string, FileEntry>();
  readonly byFqn = new Map<string, Decl>();

  constructor(descriptors: FileDescriptorProto[]) {
    for (const f of descriptors) this.addFile(f);
  }

  private addFile(f: FileDescriptorProto) {
    const locs = new Map<string, SourceCodeInfo_Location>();
    for (const loc of f.sourceCodeInfo?.location ?? []) locs.set(loc.path.join(","), loc);
    const at = (p: number[]) => locs.get(p.join(","));
    const pkg = f.package;
    const entry: FileEntry = {
      path: f.name,
      package: pkg,
      decls: [],
      imports: f.dependency.map((d, i) => ({ path: d, range: spanToRange(at([FILE.dependency, i])?.span) })),
      hasSourceInfo: locs.size > 0,
    };
    const make = (kind: DeclKind, name: string, fqn: string, p: number[], detail = ""): Decl => {
      const loc = at(p);
      const d: Decl = {
        kind,
        name,
        fqn,
        file: f.name,
        nameRange: spanToRange(at([...p, NAME])?.span),
        range: spanToRange(loc?.span),
        doc: [cleanComment(loc?.leadingComments), cleanComment(loc?.trailingComments)].filter(Boolean).join("\n\n"),
        detail,
        children: [],
      };
      this.byFqn.set(fqn, d);
      return d;
    };
    const scope = (name: string, parent: string) => (parent ? `${parent}.${name}` : name);

    const addEnum = (e: EnumDescriptorProto, parent: string, p: number[]): Decl => {
      const d = make("enum", e.name, scope(e.name, parent), p);
      e.value.forEach((v, i) => {
        // Enum values are siblings of their enum in protobuf scoping.
        d.children.push(make("enumValue", v.name, scope(v.name, parent), [...p, ENUM.value, i], `= ${v.number}`));
      });
      return d;
    };
    const addMessage = (m: DescriptorProto, parent: string, p: number[]): Decl => {
      const fqn = scope(m.name, parent);
      const d = make("message", m.name, fqn, p);
      if (m.options?.mapEntry) return d;
      // descriptor.proto is proto2: an unset oneof_index reads as 0, so ask whether it is set.
      // A proto3 `optional` field sits in a synthetic oneof of its own, which is no oneof to show.
      const oneofOf = (fd: FieldDescriptorProto) =>
        isFieldSet(fd, FieldDescriptorProtoSchema.field.oneofIndex) && !fd.proto3Optional ? fd.oneofIndex : undefined;
      const real = new Set(m.field.map(oneofOf).filter((i) => i !== undefined));
      const oneofs = m.oneofDecl.map((o, i) => (real.has(i) ? make("oneof", o.name, `${fqn}.${o.name}`, [...p, MESSAGE.oneofDecl, i]) : undefined));
      m.field.forEach((fd, i) => {
        const typeName = fd.typeName ? fd.typeName.replace(/^\./, "") : undefined;
        const typeText = typeName ?? scalarKeyword(fd.type) ?? "?";
        const label = fd.label === FieldDescriptorProto_Label.REPEATED ? "repeated " : fd.proto3Optional ? "optional " : "";
        const field = make("field", fd.name, `${fqn}.${fd.name}`, [...p, MESSAGE.field, i], `${label}${typeText} ${fd.name} = ${fd.number}`);
        if (typeName) field.typeName = typeName;
        const index = oneofOf(fd);
        const oneof = index !== undefined ? oneofs[index] : undefined;
        (oneof ?? d).children.push(field);
      });
      for (const o of oneofs) if (o) d.children.push(o);
      m.nestedType.forEach((n, i) => {
        if (!n.options?.mapEntry) d.children.push(addMessage(n, fqn, [...p, MESSAGE.nestedType, i]));
      });
      m.enumType.forEach((e, i) => d.children.push(addEnum(e, fqn, [...p, MESSAGE.enumType, i])));
      return d;
    };
    const addService = (s: ServiceDescriptorProto, p: number[]): Decl => {
      const fqn = scope(s.name, pkg);
      const d = make("service", s.name, fqn, p);
      s.method.forEach((m, i) => {
        const shape: MethodShape = {
          inputType: m.inputType.replace(/^\./, ""),
          outputType: m.outputType.replace(/^\./, ""),
          clientStreaming: m.clientStreaming ?? false,
          serverStreaming: m.serverStreaming ?? false,
        };
        const detail = `(${shape.clientStreaming ? "stream " : ""}${shape.inputType}) returns (${shape.serverStreaming ? "stream " : ""}${shape.outputType})`;
        const md = make("method", m.name, `${fqn}.${m.name}`, [...p, SERVICE.method, i], detail);
        md.method = shape;
        d.children.push(md);
      });
      return d;
    };

    f.messageType.forEach((m, i) => entry.decls.push(addMessage(m, pkg, [FILE.messageType, i])));
    f.enumType.forEach((e, i) => entry.decls.push(addEnum(e, pkg, [FILE.enumType, i])));
    f.service.forEach((s, i) => entry.decls.push(addService(s, [FILE.service, i])));
    // Top-level extensions, so that `(grpcrouter.v1.service)` resolves and hovers.
    f.extension.forEach((x, i) => {
      const typeName = x.typeName ? x.typeName.replace(/^\./, "") : (scalarKeyword(x.type) ?? "?");
      const d = make(
        "field",
        x.name,
        scope(x.name, pkg),
        [FILE.extension, i],
        `extend ${x.extendee.replace(/^\./, "")} { ${typeName} ${x.name} = ${x.number}; }`,
      );
      if (x.typeName) d.typeName = typeName;
      entry.decls.push(d);
    });
    this.files.set(f.name, entry);
  }

  /** Resolves a type name as protoc does: from the innermost scope outward. */
  resolve(name: string, scope: string): Decl | undefined {
    if (name.startsWith(".")) return this.byFqn.get(name.slice(1));
    const parts = scope ? scope.split(".") : [];
    for (let i = parts.length; i >= 0; i--) {
      const candidate = [...parts.slice(0, i), name].join(".");
      const d = this.byFqn.get(candidate);
      if (d) return d;
    }
    return undefined;
  }

  /** Message and enum types visible from a file: its own and those of what it imports. */
  typesVisibleFrom(file: string): Decl[] {
    // A file sees its own types and those of the files it imports directly.
    const seen = new Set<string>([file, ...(this.files.get(file)?.imports.map((i) => i.path) ?? [])]);
    const out: Decl[] = [];
    for (const d of this.byFqn.values()) {
      if ((d.kind === "message" || d.kind === "enum") && seen.has(d.file)) out.push(d);
    }
    return out;
  }

  /** The innermost declaration whose name is at the position. */
  declaredAt(file: string, pos: { line: number; character: number }): Decl | undefined {
    for (const d of this.byFqn.values()) if (d.file === file && contains(d.nameRange, pos)) return d;
    return undefined;
  }

  /** The innermost declaration whose full range holds the position. */
  enclosing(file: string, pos: { line: number; character: number }, kinds: DeclKind[]): Decl | undefined {
    let best: Decl | undefined;
    for (const d of this.byFqn.values()) {
      if (d.file !== file || !kinds.includes(d.kind) || !contains(d.range, pos)) continue;
      if (!best || d.fqn.length > best.fqn.length) best = d;
    }
    return best;
  }
}
