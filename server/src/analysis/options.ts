// Options a place in a .proto can take: the standard ones, read from descriptor.proto as
// protobuf-es ships it (so new ones appear with the library), and the custom ones the
// module's compile declares (`extend google.protobuf.MethodOptions { … }`).
import { ScalarType, type DescField, type DescMessage } from "@bufbuild/protobuf";
import {
  EnumOptionsSchema,
  EnumValueOptionsSchema,
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FieldOptionsSchema,
  FileOptionsSchema,
  MessageOptionsSchema,
  MethodOptionsSchema,
  OneofOptionsSchema,
  ServiceOptionsSchema,
  type DescriptorProto,
  type FieldDescriptorProto,
} from "@bufbuild/protobuf/wkt";
import type { Snapshot } from "./snapshot.js";

export type OptionTarget = "file" | "message" | "field" | "enum" | "enumValue" | "service" | "method" | "oneof";

const SCHEMAS: Record<OptionTarget, DescMessage> = {
  file: FileOptionsSchema,
  message: MessageOptionsSchema,
  field: FieldOptionsSchema,
  enum: EnumOptionsSchema,
  enumValue: EnumValueOptionsSchema,
  service: ServiceOptionsSchema,
  method: MethodOptionsSchema,
  oneof: OneofOptionsSchema,
};

/** Options no one writes by hand: compiler bookkeeping, editions internals, the raw form. */
const HIDDEN = new Set(["uninterpreted_option", "map_entry", "features", "feature_support", "edition_defaults"]);

export interface OptionInfo {
  /** `deprecated`, or a custom option's fully-qualified name `grpcrouter.v1.service`. */
  name: string;
  custom: boolean;
  /** What its value is: `bool`, `string`, an enum or message name. */
  type: string;
  /** Names of the enum values it takes, for an enum-typed option. */
  values: string[];
  /** For a custom option: the import path that declares it, and its message type's fields. */
  file?: string;
  fields?: { name: string; type: string }[];
}

/** Written in a field's brackets, but fields of FieldDescriptorProto rather than options. */
const FIELD_PSEUDO_OPTIONS: OptionInfo[] = [
  { name: "json_name", custom: false, type: "string", values: [] },
  { name: "default", custom: false, type: "the field's type (proto2)", values: [] },
];

export function standardOptions(target: OptionTarget): OptionInfo[] {
  const pseudo = target === "field" ? FIELD_PSEUDO_OPTIONS : [];
  return [
    ...pseudo,
    ...SCHEMAS[target].fields
      .filter((f) => !HIDDEN.has(f.name) && !f.deprecated)
      .map((f) => ({
        name: f.name,
        custom: false,
        type: typeOfField(f),
        values: f.enum ? f.enum.values.map((v) => v.name) : f.fieldKind === "scalar" && f.scalar === ScalarType.BOOL ? ["true", "false"] : [],
      })),
  ];
}

function typeOfField(f: DescField): string {
  if (f.fieldKind === "scalar") return ScalarType[f.scalar].toLowerCase();
  if (f.fieldKind === "enum") return f.enum.name;
  if (f.fieldKind === "message") return f.message.name;
  if (f.fieldKind === "list")
    return `repeated ${f.listKind === "scalar" ? ScalarType[f.scalar].toLowerCase() : f.listKind === "enum" ? f.enum.name : f.message.name}`;
  return "map";
}

/** Custom options for a target declared anywhere in the module's last compile. */
export function customOptions(snap: Snapshot | undefined, target: OptionTarget): OptionInfo[] {
  if (!snap?.compiled.descriptors) return [];
  const extendee = `.${SCHEMAS[target].typeName}`;
  const out: OptionInfo[] = [];
  const visit = (file: string, scope: string, extensions: FieldDescriptorProto[], nested: DescriptorProto[]) => {
    for (const x of extensions) {
      if (x.extendee !== extendee) continue;
      const typeName = x.typeName.replace(/^\./, "");
      const type = typeName || (FieldDescriptorProto_Type[x.type] ?? "").toLowerCase();
      const typeDecl = typeName ? snap.index.byFqn.get(typeName) : undefined;
      const repeated = x.label === FieldDescriptorProto_Label.REPEATED ? "repeated " : "";
      out.push({
        name: scope ? `${scope}.${x.name}` : x.name,
        custom: true,
        type: repeated + type,
        values: typeDecl?.kind === "enum" ? typeDecl.children.map((c) => c.name) : x.type === FieldDescriptorProto_Type.BOOL ? ["true", "false"] : [],
        file,
        fields:
          typeDecl?.kind === "message"
            ? typeDecl.children
                .filter((c) => c.kind === "field" || c.kind === "oneof")
                .flatMap((c) => (c.kind === "oneof" ? c.children : [c]))
                .map((c) => ({ name: c.name, type: c.detail.split(" ").slice(0, -3).join(" ") }))
            : undefined,
      });
    }
    for (const m of nested) visit(file, scope ? `${scope}.${m.name}` : m.name, m.extension, m.nestedType);
  };
  for (const f of snap.compiled.descriptors) visit(f.name, f.package, f.extension, f.messageType);
  return out;
}
