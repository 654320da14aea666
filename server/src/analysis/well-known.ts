// The well-known types every protobuf compiler knows (google/protobuf/*.proto), from the
// descriptors protobuf-es ships: what completion and "add import" can offer even when no
// file of the module imports them yet.
import {
  file_google_protobuf_any,
  file_google_protobuf_api,
  file_google_protobuf_descriptor,
  file_google_protobuf_duration,
  file_google_protobuf_empty,
  file_google_protobuf_field_mask,
  file_google_protobuf_source_context,
  file_google_protobuf_struct,
  file_google_protobuf_timestamp,
  file_google_protobuf_type,
  file_google_protobuf_wrappers,
} from "@bufbuild/protobuf/wkt";
import { ProtoIndex } from "./proto-index.js";

const FILES = [
  file_google_protobuf_any,
  file_google_protobuf_api,
  file_google_protobuf_descriptor,
  file_google_protobuf_duration,
  file_google_protobuf_empty,
  file_google_protobuf_field_mask,
  file_google_protobuf_source_context,
  file_google_protobuf_struct,
  file_google_protobuf_timestamp,
  file_google_protobuf_type,
  file_google_protobuf_wrappers,
];

let index: ProtoIndex | undefined;

/** The declarations of the well-known types (no source positions). */
export function wellKnownIndex(): ProtoIndex {
  index ??= new ProtoIndex(FILES.map((f) => f.proto));
  return index;
}

/** Import paths of the well-known types: `google/protobuf/timestamp.proto`, … */
export function wellKnownImports(): string[] {
  return FILES.map((f) => f.proto.name).sort();
}

export function isWellKnown(importPath: string): boolean {
  return importPath.startsWith("google/protobuf/");
}
