// The Connect bridge: a ServiceImpl<S> from @connectrpc/connect, unchanged, served over the
// tunnel. Each call is handed to Connect's own gRPC-protocol handler (createConnectRouter)
// as if it had arrived over HTTP/2: enveloped request bytes in, enveloped response bytes and
// grpc-status trailers out. So HandlerContext, ConnectError (raw message, details), `-bin`
// headers, deadlines and the abort signal behave exactly as in connect-node.
import type { DescService } from "@bufbuild/protobuf";
import { createConnectRouter, type ServiceImpl } from "@connectrpc/connect";
import type { UniversalHandler, UniversalHandlerOptions } from "@connectrpc/connect/protocol";
import * as grpc from "@grpc/grpc-js";
import type { RawCall, RawHandler, RawStatus } from "./bridge-call.js";
import { headersFromMetadata, metadataFromHeaders } from "./metadata.js";
import { createRawBridge, type Bridge, type BridgeOptions } from "./raw-bridge.js";
import type { TunnelSpec } from "./spec.js";

export interface ConnectBridgeOptions extends BridgeOptions {
  /** Passed to Connect's handlers (interceptors, readMaxBytes, …). */
  connect?: Partial<UniversalHandlerOptions>;
}

export function createBridge<S extends DescService>(
  tunnel: TunnelSpec<S>,
  impl: Partial<ServiceImpl<S>>,
  options: ConnectBridgeOptions,
): Bridge {
  return createRawBridge(tunnel, connectHandler(tunnel, impl, options.connect), options);
}

/** A RawHandler that runs a Connect ServiceImpl (exported for the CLI and tests). */
export function connectHandler<S extends DescService>(
  tunnel: TunnelSpec<S>,
  impl: Partial<ServiceImpl<S>>,
  handlerOptions: Partial<UniversalHandlerOptions> = {},
): RawHandler {
  const router = createConnectRouter({ ...handlerOptions, grpc: true, grpcWeb: false, connect: false });
  router.service(tunnel.service, impl);
  const byPath = new Map<string, UniversalHandler>();
  for (const h of router.handlers) byPath.set(h.requestPath, h);
  return (call) => runConnect(byPath.get(call.method), call);
}

async function runConnect(h: UniversalHandler | undefined, call: RawCall): Promise<RawStatus> {
  if (!h) return { code: grpc.status.UNIMPLEMENTED, details: `${call.method} is not implemented` };
  const header = headersFromMetadata(call.metadata);
  header.set("content-type", "application/grpc+proto");
  header.set("te", "trailers");
  if (Number.isFinite(call.deadline)) header.set("grpc-timeout", `${Math.max(1, Math.ceil(call.deadline - Date.now()))}m`);
  const res = await h({
    httpVersion: "2.0",
    method: "POST",
    url: `http://grpcrouter.bridge${call.method}`,
    header,
    body: envelopes(call.requests),
    signal: call.signal,
  });
  if (res.status !== 200) return { code: grpc.status.INTERNAL, details: `the Connect handler answered HTTP ${res.status}` };
  // Connect resolves once the first message is ready, so the headers are final now.
  const headerMd = metadataFromHeaders(res.header);
  // Only custom headers need a Headers frame: without one the router's grpc-js sends its
  // bare headers with the first message, or answers trailers-only when there is none.
  if (Object.keys(headerMd.toJSON()).length > 0) call.sendHeaders(headerMd);
  if (res.body) for await (const message of messagesOf(res.body)) await call.send(message);
  return statusOfTrailer(res.trailer);
}

function statusOfTrailer(trailer: Headers | undefined): RawStatus {
  const md = metadataFromHeaders(trailer);
  const code = Number(trailer?.get("grpc-status") ?? "0");
  let details = trailer?.get("grpc-message") ?? "";
  try {
    details = decodeURIComponent(details);
  } catch {
    // not percent-encoded after all; keep it as it is
  }
  const bin = trailer?.get("grpc-status-details-bin");
  if (bin) md.set("grpc-status-details-bin", Buffer.from(bin, "base64"));
  return { code: Number.isInteger(code) ? code : grpc.status.UNKNOWN, details, metadata: md };
}

/** Request payloads as gRPC length-prefixed envelopes (header and payload as two chunks: no copy). */
async function* envelopes(payloads: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  for await (const p of payloads) {
    const head = new Uint8Array(5);
    new DataView(head.buffer).setUint32(1, p.length);
    yield head;
    yield p;
  }
}

/** Splits Connect's enveloped response body into message payloads. */
async function* messagesOf(body: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  let buf: Uint8Array = new Uint8Array(0);
  for await (const chunk of body) {
    buf = buf.length === 0 ? chunk : concat(buf, chunk);
    while (buf.length >= 5) {
      const len = new DataView(buf.buffer, buf.byteOffset, 5).getUint32(1);
      if (buf.length < 5 + len) break;
      if ((buf[0]! & 0x01) !== 0) throw new Error("compressed response envelope (compression is not negotiated on the tunnel)");
      yield buf.subarray(5, 5 + len);
      buf = buf.subarray(5 + len);
    }
  }
  if (buf.length > 0) throw new Error(`response body ended inside an envelope (${buf.length} bytes left)`);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
