// gRPC server reflection (v1 and v1alpha) for the services a router routes, so grpcurl,
// grpcui, Postman and Evans can list, describe and call them through the router.
//
// Answered from the protobuf-es descriptors the router already has (from buf or from
// generated code): the files are sent as they were compiled, comments included, and nothing
// is parsed again. Not @grpc/reflection: it loads its .proto from disk relative to its own
// folder, which breaks inside the single-file bundles the CLI and the extension ship, and it
// merges files by package, so imports would not match what clients ask for.
import * as grpc from "@grpc/grpc-js";
import { create, toBinary, type DescFile } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import {
  ServerReflection,
  ServerReflectionRequestSchema,
  ServerReflectionResponseSchema,
  type ServerReflectionRequest,
  type ServerReflectionResponse,
} from "./gen/grpc/reflection/v1/reflection_pb.js";
import { grpcServiceDefinition } from "../grpc-definition.js";
import { GrpcServer } from "../tunnel/http2/server.js";
import { serveBidi } from "../tunnel/http2/typed.js";

/** v1 and v1alpha differ only in the package name; the messages are the same on the wire. */
export const REFLECTION_SERVICES = ["grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"] as const;

/** Every file the given files import, transitively, each once, dependencies first. */
function withDependencies(files: Iterable<DescFile>): DescFile[] {
  const seen = new Set<string>();
  const out: DescFile[] = [];
  const visit = (f: DescFile) => {
    if (seen.has(f.proto.name)) return;
    seen.add(f.proto.name);
    for (const d of f.dependencies) visit(d);
    out.push(f);
  };
  for (const f of files) visit(f);
  return out;
}

/** What reflection answers from: files by name, symbols by full name, extensions by extendee. */
class ReflectionIndex {
  readonly files = new Map<string, DescFile>();
  readonly symbols = new Map<string, DescFile>();
  readonly extensions = new Map<string, Map<number, DescFile>>();
  readonly #encoded = new Map<string, Uint8Array>();

  constructor(
    files: Iterable<DescFile>,
    readonly services: readonly string[],
  ) {
    for (const file of withDependencies(files)) {
      this.files.set(file.proto.name, file);
      const addExt = (ext: { extendee: { typeName: string }; number: number; typeName: string }) => {
        this.symbols.set(ext.typeName, file);
        let byNumber = this.extensions.get(ext.extendee.typeName);
        if (!byNumber) this.extensions.set(ext.extendee.typeName, (byNumber = new Map()));
        byNumber.set(ext.number, file);
      };
      const addMessage = (m: DescFile["messages"][number]) => {
        this.symbols.set(m.typeName, file);
        for (const f of m.fields) this.symbols.set(`${m.typeName}.${f.name}`, file);
        for (const o of m.oneofs) this.symbols.set(`${m.typeName}.${o.name}`, file);
        for (const e of m.nestedEnums) this.symbols.set(e.typeName, file);
        for (const x of m.nestedExtensions) addExt(x);
        for (const n of m.nestedMessages) addMessage(n);
      };
      for (const m of file.messages) addMessage(m);
      for (const e of file.enums) this.symbols.set(e.typeName, file);
      for (const x of file.extensions) addExt(x);
      for (const s of file.services) {
        this.symbols.set(s.typeName, file);
        for (const m of s.methods) this.symbols.set(`${s.typeName}.${m.name}`, file);
      }
    }
  }

  /** The file, then what it imports (transitively), serialized; clients skip what they have. */
  fileAndDependencies(file: DescFile): Uint8Array[] {
    return withDependencies([file])
      .reverse()
      .map((f) => {
        let bytes = this.#encoded.get(f.proto.name);
        if (!bytes) this.#encoded.set(f.proto.name, (bytes = toBinary(FileDescriptorProtoSchema, f.proto)));
        return bytes;
      });
  }

  answer(request: ServerReflectionRequest): ServerReflectionResponse {
    const base = { validHost: request.host, originalRequest: request };
    const files = (file: DescFile | undefined, what: string): ServerReflectionResponse =>
      file
        ? create(ServerReflectionResponseSchema, {
            ...base,
            messageResponse: { case: "fileDescriptorResponse", value: { fileDescriptorProto: this.fileAndDependencies(file) } },
          })
        : error(grpc.status.NOT_FOUND, `${what} not found`);
    const error = (code: grpc.status, message: string) =>
      create(ServerReflectionResponseSchema, { ...base, messageResponse: { case: "errorResponse", value: { errorCode: code, errorMessage: message } } });
    const r = request.messageRequest;
    switch (r.case) {
      case "listServices":
        return create(ServerReflectionResponseSchema, {
          ...base,
          messageResponse: { case: "listServicesResponse", value: { service: this.services.map((name) => ({ name })) } },
        });
      case "fileByFilename":
        return files(this.files.get(r.value), `file ${r.value}`);
      case "fileContainingSymbol":
        return files(this.symbols.get(r.value.replace(/^\./, "")), `symbol ${r.value}`);
      case "fileContainingExtension":
        return files(
          this.extensions.get(r.value.containingType.replace(/^\./, ""))?.get(r.value.extensionNumber),
          `extension ${r.value.extensionNumber} of ${r.value.containingType}`,
        );
      case "allExtensionNumbersOfType": {
        const type = r.value.replace(/^\./, "");
        if (!this.symbols.has(type)) return error(grpc.status.NOT_FOUND, `type ${r.value} not found`);
        return create(ServerReflectionResponseSchema, {
          ...base,
          messageResponse: {
            case: "allExtensionNumbersResponse",
            value: { baseTypeName: type, extensionNumber: [...(this.extensions.get(type)?.keys() ?? [])].sort((a, b) => a - b) },
          },
        });
      }
      default:
        return error(grpc.status.INVALID_ARGUMENT, "empty reflection request");
    }
  }
}

/**
 * Adds grpc.reflection.v1 and v1alpha to `server`, describing `services` (fully-qualified
 * names) from the files that declare them; their imports are found through the descriptors.
 * Returns a function that replaces what is described (a router reloading its protos).
 */
export function addReflection(
  server: GrpcServer | Pick<grpc.Server, "addService">,
  files: Iterable<DescFile>,
  services: string[],
): (files: Iterable<DescFile>, services: string[]) => void {
  let index = new ReflectionIndex(files, [...services].sort());
  const replace = (nextFiles: Iterable<DescFile>, nextServices: string[]) => {
    index = new ReflectionIndex(nextFiles, [...nextServices].sort());
  };
  if (server instanceof GrpcServer) {
    for (const name of REFLECTION_SERVICES) {
      serveBidi(server, `/${name}/ServerReflectionInfo`, ServerReflectionRequestSchema, ServerReflectionResponseSchema, (sink) => ({
        message: (request) => sink.write(index.answer(request)),
        halfClose: () => sink.end(),
      }));
    }
    return replace;
  }
  const handler = (call: grpc.ServerDuplexStream<ServerReflectionRequest, ServerReflectionResponse>) => {
    call.on("data", (request: ServerReflectionRequest) => call.write(index.answer(request)));
    call.on("end", () => call.end());
    call.on("error", () => call.end());
  };
  for (const name of REFLECTION_SERVICES) server.addService(grpcServiceDefinition(ServerReflection, name), { ServerReflectionInfo: handler });
  return replace;
}
