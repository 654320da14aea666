// The metadata a server call is made with. A handler that never reads it (the Register
// stream: all it needs is in its Hello) gets one empty Metadata shared by every such call,
// not a parsed copy of its request headers: a router with 10,000 registered instances kept
// ≈ 430 bytes each of headers nobody looked at.
import * as grpc from "@grpc/grpc-js";
import { metadataFromRawHeaders } from "./grpc-wire.js";

/** Shared by every call whose method ignores metadata; never written to. */
const UNREAD = new grpc.Metadata();

/** `raw` (node's flat [name, value, …] headers) as the call's metadata, unless its method ignores it. */
export function callMetadata(method: { readonly ignoresMetadata?: boolean }, raw: readonly string[]): grpc.Metadata {
  return method.ignoresMetadata ? UNREAD : metadataFromRawHeaders(raw);
}
