// A grpcurl-style reflection client for tests, written with grpc-js against the reflection
// protos @grpc/reflection ships (v1 and v1alpha): list services, fetch the file that declares
// a symbol (with its imports), and turn the answer into a protobuf-es registry so a test can
// call a method knowing nothing but what the server said about itself.
import { createRequire } from "node:module";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { createFileRegistry, fromBinary, type FileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import { create } from "@bufbuild/protobuf";

export type ReflectionVersion = "v1" | "v1alpha";

interface ReflectionResponse {
  listServicesResponse?: { service: { name: string }[] };
  fileDescriptorResponse?: { fileDescriptorProto: Buffer[] };
  errorResponse?: { errorCode: number; errorMessage: string };
  messageResponse: string;
}

const require = createRequire(import.meta.url);
const reflectionRoot = path.join(path.dirname(require.resolve("@grpc/reflection/package.json")), "build", "proto");

export class ReflectionClient {
  readonly #client: grpc.Client;
  readonly #stream: grpc.ClientDuplexStream<object, ReflectionResponse>;
  readonly #waiting: Array<{ resolve: (r: ReflectionResponse) => void; reject: (e: Error) => void }> = [];

  constructor(target: string, version: ReflectionVersion) {
    const def = protoLoader.loadSync(`grpc/reflection/${version}/reflection.proto`, {
      includeDirs: [reflectionRoot],
      keepCase: false,
      longs: String,
      enums: String,
      defaults: true,
      oneofs: true,
    });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      grpc: { reflection: Record<ReflectionVersion, { ServerReflection: grpc.ServiceClientConstructor }> };
    };
    const Ctor = pkg.grpc.reflection[version].ServerReflection;
    this.#client = new Ctor(target, grpc.credentials.createInsecure());
    // One stream for every question, as grpcurl does; answers come back in order.
    this.#stream = (this.#client as unknown as { serverReflectionInfo(): grpc.ClientDuplexStream<object, ReflectionResponse> }).serverReflectionInfo();
    this.#stream.on("data", (r: ReflectionResponse) => this.#waiting.shift()?.resolve(r));
    this.#stream.on("error", (e: Error) => {
      for (const w of this.#waiting.splice(0)) w.reject(e);
    });
  }

  #ask(request: object): Promise<ReflectionResponse> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ resolve, reject });
      this.#stream.write(request);
    });
  }

  async listServices(): Promise<string[]> {
    const r = await this.#ask({ listServices: "*" });
    if (r.errorResponse) throw new Error(`list_services: ${r.errorResponse.errorMessage}`);
    return (r.listServicesResponse?.service ?? []).map((s) => s.name).sort();
  }

  /** The files the server sends for a symbol: the declaring file and what it imports. */
  async fileContainingSymbol(symbol: string): Promise<FileDescriptorProto[]> {
    const r = await this.#ask({ fileContainingSymbol: symbol });
    if (r.errorResponse) throw Object.assign(new Error(r.errorResponse.errorMessage), { code: r.errorResponse.errorCode });
    return (r.fileDescriptorResponse?.fileDescriptorProto ?? []).map((b) => fromBinary(FileDescriptorProtoSchema, b));
  }

  async fileByFilename(name: string): Promise<FileDescriptorProto[]> {
    const r = await this.#ask({ fileByFilename: name });
    if (r.errorResponse) throw Object.assign(new Error(r.errorResponse.errorMessage), { code: r.errorResponse.errorCode });
    return (r.fileDescriptorResponse?.fileDescriptorProto ?? []).map((b) => fromBinary(FileDescriptorProtoSchema, b));
  }

  /** A registry built from what reflection says about `symbol`, fetching missing imports by name. */
  async registryFor(symbol: string): Promise<FileRegistry> {
    const files = new Map<string, FileDescriptorProto>();
    for (const f of await this.fileContainingSymbol(symbol)) files.set(f.name, f);
    for (let missing = missingImports(files); missing.length > 0; missing = missingImports(files)) {
      for (const name of missing) for (const f of await this.fileByFilename(name)) files.set(f.name, f);
    }
    // createFileRegistry wants every import before the file importing it.
    const ordered: FileDescriptorProto[] = [];
    const visit = (f: FileDescriptorProto) => {
      if (ordered.includes(f)) return;
      for (const d of f.dependency) visit(files.get(d)!);
      ordered.push(f);
    };
    for (const f of files.values()) visit(f);
    return createFileRegistry(create(FileDescriptorSetSchema, { file: ordered }));
  }

  close(): void {
    this.#stream.end();
    this.#client.close();
  }
}

function missingImports(files: Map<string, FileDescriptorProto>): string[] {
  const out = new Set<string>();
  for (const f of files.values()) for (const d of f.dependency) if (!files.has(d)) out.add(d);
  return [...out];
}
