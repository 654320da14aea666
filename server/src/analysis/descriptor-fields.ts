// descriptor.proto as protobuf-es describes it: the field numbers that address elements in
// SourceCodeInfo paths (`[4, 0, 2, 1]` is message 0's field 1), and the proto keywords of the
// scalar types. Read from the schemas, so no number is written here by hand.
import { ScalarType, type DescMessage } from "@bufbuild/protobuf";
import {
  DescriptorProtoSchema,
  EnumDescriptorProtoSchema,
  FileDescriptorProtoSchema,
  OneofDescriptorProtoSchema,
  ServiceDescriptorProtoSchema,
} from "@bufbuild/protobuf/wkt";

type FieldNumbers<S> = S extends { field: infer F } ? { readonly [K in keyof F]: number } : never;

function fieldNumbers<S extends DescMessage & { field: object }>(schema: S): FieldNumbers<S> {
  return Object.fromEntries(schema.fields.map((f) => [f.localName, f.number])) as FieldNumbers<S>;
}

/** FileDescriptorProto's field numbers, by protobuf-es name: FILE.messageType is 4. */
export const FILE = fieldNumbers(FileDescriptorProtoSchema);
/** DescriptorProto's: MESSAGE.field is 2, MESSAGE.nestedType 3, MESSAGE.oneofDecl 8. */
export const MESSAGE = fieldNumbers(DescriptorProtoSchema);
export const ENUM = fieldNumbers(EnumDescriptorProtoSchema);
export const SERVICE = fieldNumbers(ServiceDescriptorProtoSchema);
export const ONEOF = fieldNumbers(OneofDescriptorProtoSchema);
/** Every element's `name` is field 1 of its descriptor. */
export const NAME = MESSAGE.name;

/** The proto keyword of a scalar field type (`int64`), or undefined for messages, enums, groups. */
export function scalarKeyword(type: number): string | undefined {
  return ScalarType[type]?.toLowerCase();
}

/** Every scalar type's keyword, in field-type order. */
export const SCALAR_KEYWORDS: readonly string[] = Object.values(ScalarType)
  .filter((v): v is number => typeof v === "number")
  .map((t) => ScalarType[t]!.toLowerCase());
