// A grpcurl-style client of gRPC server reflection (v1, or v1alpha for older servers), for
// tools: list a server's services and fetch descriptors into a protobuf-es registry, so a
// method can be called knowing nothing but what the server says about itself.
import * as grpc from "@grpc/grpc-js";
import { create, createFileRegistry, fromBinary, toBinary, type FileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import {
  ServerReflectionRequestSchema,
  ServerReflectionResponseSchema,
  type ServerReflectionRequest,
  type ServerReflectionResponse,
} from "./gen/grpc/reflection/v1/reflection_pb.js";

export interface ReflectionClient {
  listServices(): Promise<string[]>;
  /** The file declaring `symbol` and the files it imports. */
  fileContainingSymbol(symbol: string): Promise<FileDescriptorProto[]>;
  fileByFilename(name: string): Promise<FileDescriptorProto[]>;
  /** A registry of everything `symbol` needs, imports fetched by name as required. */
  registryFor(symbol: string): Promise<FileRegistry>;
  close(): void;
}

/** An error the server answered with (its gRPC code is `code`, e.g. NOT_FOUND). */
export class ReflectionError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export function createReflectionClient(target: string, options: { version?: "v1" | "v1alpha"; credentials?: grpc.ChannelCredentials } = {}): ReflectionClient {
  const client = new grpc.Client(target, options.credentials ?? grpc.credentials.createInsecure());
  const pathName = `/grpc.reflection.${options.version ?? "v1"}.ServerReflection/ServerReflectionInfo`;
  let stream: grpc.ClientDuplexStream<ServerReflectionRequest, ServerReflectionResponse> | undefined;
  const waiting: Array<{ resolve: (r: ServerReflectionResponse) => void; reject: (e: Error) => void }> = [];

  // One stream for every question, as grpcurl does; the server answers in order.
  const open = () => {
    const s = client.makeBidiStreamRequest(
      pathName,
      (m: ServerReflectionRequest) => Buffer.from(toBinary(ServerReflectionRequestSchema, m)),
      (b: Buffer) => fromBinary(ServerReflectionResponseSchema, b),
    );
    s.on("data", (r: ServerReflectionResponse) => waiting.shift()?.resolve(r));
    s.on("error", (e: Error) => {
      stream = undefined;
      for (const w of waiting.splice(0)) w.reject(e);
    });
    s.on("end", () => {
      stream = undefined;
    });
    return s;
  };

  const ask = (messageRequest: ServerReflectionRequest["messageRequest"]) =>
    new Promise<ServerReflectionResponse>((resolve, reject) => {
      stream ??= open();
      waiting.push({ resolve, reject });
      stream.write(create(ServerReflectionRequestSchema, { messageRequest }));
    });

  const files = async (messageRequest: ServerReflectionRequest["messageRequest"]): Promise<FileDescriptorProto[]> => {
    const r = await ask(messageRequest);
    const m = r.messageResponse;
    if (m.case === "errorResponse") throw new ReflectionError(m.value.errorCode, m.value.errorMessage);
    if (m.case !== "fileDescriptorResponse") throw new Error(`unexpected reflection answer ${m.case ?? "(empty)"}`);
    return m.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b));
  };

  const api: ReflectionClient = {
    async listServices() {
      const r = await ask({ case: "listServices", value: "*" });
      const m = r.messageResponse;
      if (m.case === "errorResponse") throw new ReflectionError(m.value.errorCode, m.value.errorMessage);
      if (m.case !== "listServicesResponse") throw new Error(`unexpected reflection answer ${m.case ?? "(empty)"}`);
      return m.value.service.map((s) => s.name).sort();
    },
    fileContainingSymbol: (symbol) => files({ case: "fileContainingSymbol", value: symbol }),
    fileByFilename: (name) => files({ case: "fileByFilename", value: name }),
    async registryFor(symbol) {
      const byName = new Map<string, FileDescriptorProto>();
      for (const f of await api.fileContainingSymbol(symbol)) byName.set(f.name, f);
      for (;;) {
        const missing = [...new Set([...byName.values()].flatMap((f) => f.dependency))].filter((d) => !byName.has(d));
        if (missing.length === 0) break;
        for (const name of missing) for (const f of await api.fileByFilename(name)) byName.set(f.name, f);
      }
      // createFileRegistry wants every import before the file importing it.
      const ordered: FileDescriptorProto[] = [];
      const visit = (f: FileDescriptorProto) => {
        if (ordered.includes(f)) return;
        for (const d of f.dependency) visit(byName.get(d)!);
        ordered.push(f);
      };
      for (const f of byName.values()) visit(f);
      return createFileRegistry(create(FileDescriptorSetSchema, { file: ordered }));
    },
    close() {
      stream?.end();
      client.close();
    },
  };
  return api;
}
