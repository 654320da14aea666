// All grpcrouter phases as one protoc/buf plugin (the `protoc-gen-grpcrouter` bin):
// `_router.proto`, `_router_pb.ts` (+ grpcrouter/v1/tunnel.proto and its _pb.ts), and the
// phase 3/4 files. The user's own `_pb.ts` come from protoc-gen-es beside it in buf.gen.yaml.
//
//   plugins:
//     - local: protoc-gen-es
//       out: gen
//       opt: [target=ts, import_extension=js]
//     - local: protoc-gen-grpcrouter
//       out: gen
//       opt: [previous=gen]      # earlier output: keeps frame field numbers stable
import { spawnSync } from "node:child_process";
import { create, fromBinary } from "@bufbuild/protobuf";
import { CodeGeneratorResponse_Feature, CodeGeneratorResponseSchema, Edition, FileDescriptorSetSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import type { Plugin } from "@bufbuild/protoplugin";
import { strToU8, zipSync } from "fflate";
import { findBuf } from "./compiler/buf.js";
import { formatDiagnostic, hasErrors } from "./diagnostics.js";
import { generateFromDescriptors, registryFromProtos } from "./generate.js";
import { grpcrouterProtos, TUNNEL_PROTO } from "./grpcrouter-protos.js";
import { parseParameter, previousFromDir } from "./phases/phase1-router-proto.js";
import { PLUGIN_VERSION } from "./version.js";

let tunnelDescriptors: FileDescriptorProto[] | undefined;

/** tunnel.proto and its imports, compiled once per process from the embedded text. */
function tunnelFiles(): FileDescriptorProto[] {
  if (tunnelDescriptors) return tunnelDescriptors;
  const zip = zipSync({ [TUNNEL_PROTO]: strToU8(grpcrouterProtos[TUNNEL_PROTO]!) }, { level: 0 });
  const r = spawnSync(findBuf(), ["build", "-#format=zip", "--error-format=json", "--output", "-#format=binpb"], { input: zip });
  if (r.status !== 0) throw new Error(`cannot compile ${TUNNEL_PROTO}: ${r.stderr.toString()}`);
  return (tunnelDescriptors = fromBinary(FileDescriptorSetSchema, r.stdout).file);
}

export const grpcrouterPlugin: Plugin = {
  name: "protoc-gen-grpcrouter",
  version: PLUGIN_VERSION,
  run(request) {
    const features = BigInt(CodeGeneratorResponse_Feature.PROTO3_OPTIONAL | CodeGeneratorResponse_Feature.SUPPORTS_EDITIONS);
    const respond = (init: { error?: string; file?: { name: string; content: string }[] }) =>
      create(CodeGeneratorResponseSchema, {
        supportedFeatures: features,
        minimumEdition: Edition.EDITION_PROTO2,
        maximumEdition: Edition.EDITION_2023,
        ...init,
      });
    try {
      const { previous, tunnelCode } = parseParameter(request.parameter);
      const protos = [...request.protoFile];
      if (!protos.some((p) => p.name === TUNNEL_PROTO)) {
        for (const t of tunnelFiles()) if (!protos.some((p) => p.name === t.name)) protos.push(t);
      }
      const result = generateFromDescriptors({
        protos,
        registry: registryFromProtos(protos),
        files: request.fileToGenerate,
        ...(previous !== undefined ? { previous: previousFromDir(previous) } : {}),
        userCode: false,
        ...(tunnelCode !== undefined ? { tunnelCode } : {}),
      });
      if (hasErrors(result.diagnostics)) return respond({ error: result.diagnostics.map(formatDiagnostic).join("\n") });
      return respond({ file: result.files.map((f) => ({ name: f.path, content: f.content })) });
    } catch (e) {
      return respond({ error: e instanceof Error ? e.message : String(e) });
    }
  },
};
