// The metadata a server call is made with, for HTTP/2 and WebSocket calls alike. None is
// parsed for a handler that never reads it (the Register stream: all it needs is in its
// Hello): a router with 10,000 registered instances kept ≈ 430 bytes each of headers nobody
// looked at. Nor is any made when the client sent none (most calls). A call given undefined
// makes an empty Metadata only if it is read after all.
import type * as grpc from "@grpc/grpc-js";
import { metadataIfAny } from "./grpc-wire.js";

/** `raw` (node's flat [name, value, …] headers) as the call's metadata: undefined when its method ignores it or there is none. */
export function callMetadata(method: { readonly ignoresMetadata?: boolean }, raw: readonly string[]): grpc.Metadata | undefined {
  return method.ignoresMetadata ? undefined : metadataIfAny(raw);
}
