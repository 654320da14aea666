// gRPC server reflection (v1 and v1alpha) for the services a router routes, so grpcurl,
// grpcui, Postman and Evans can list, describe and call them through the router.
//
// @grpc/reflection reads a proto-loader PackageDefinition, but all it uses of it is each
// entry's `fileDescriptorProtos`; we hand it the serialized descriptors we already have
// (from buf or from generated code), so no .proto file is parsed a second time.
import type * as grpc from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";
import { type DescFile, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";

/** Every file the given files import, transitively, each once, dependencies first. */
function withDependencies(files: Iterable<DescFile>): DescFile[] {
  const seen = new Set<string>();
  const out: DescFile[] = [];
  const visit = (f: DescFile) => {
    if (seen.has(f.name)) return;
    seen.add(f.name);
    for (const d of f.dependencies) visit(d);
    out.push(f);
  };
  for (const f of files) visit(f);
  return out;
}

/**
 * Adds the reflection services to `server`, describing `services` (fully-qualified names)
 * from the files that declare them (their imports are found through the descriptors).
 */
export function addReflection(server: Pick<grpc.Server, "addService">, files: Iterable<DescFile>, services: string[]): void {
  const fileDescriptorProtos = withDependencies(files).map((f) => Buffer.from(toBinary(FileDescriptorProtoSchema, f.proto)));
  // The only shape @grpc/reflection reads from a PackageDefinition.
  const pkg = { files: { fileDescriptorProtos } } as unknown as ConstructorParameters<typeof ReflectionService>[0];
  new ReflectionService(pkg, { services }).addToServer(server);
}
