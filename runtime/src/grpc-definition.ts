// grpc-js's definition of a service, made from its protobuf-es descriptor: the paths, the
// streaming kinds and protobuf-es binary codecs come from the generated code, so the Admin,
// health and reflection services (and their clients) are never written out by hand.
import { fromBinary, toBinary, type DescMessage, type DescService, type Message, type MessageShape } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";

/** Serialize / deserialize of one message type with protobuf-es, as grpc-js wants them. */
export function grpcCodec<D extends DescMessage>(schema: D): { serialize(msg: MessageShape<D>): Buffer; deserialize(bytes: Buffer): MessageShape<D> } {
  return {
    serialize: (msg) => Buffer.from(toBinary(schema, msg)),
    deserialize: (bytes) => fromBinary(schema, bytes),
  };
}

/**
 * The grpc-js ServiceDefinition of `service`, keyed by method name (as grpc-js implementations
 * are). `typeName` serves the same methods under another name (reflection's v1alpha).
 */
export function grpcServiceDefinition(service: DescService, typeName: string = service.typeName): grpc.ServiceDefinition {
  const definition: Record<string, grpc.MethodDefinition<Message, Message>> = {};
  for (const method of service.methods) {
    const input = grpcCodec(method.input);
    const output = grpcCodec(method.output);
    definition[method.name] = {
      path: `/${typeName}/${method.name}`,
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: input.serialize,
      requestDeserialize: input.deserialize,
      responseSerialize: output.serialize,
      responseDeserialize: output.deserialize,
    };
  }
  return definition;
}
