// The Connect bridge: a ServiceImpl<S> from @connectrpc/connect, unchanged, served over the
// tunnel. Its methods are called directly (bridge/connect-handler.ts). With options only
// Connect's own gRPC-protocol handler implements (interceptors, a request gate, …), each call
// is handed to that handler (createConnectRouter) as if it had arrived over HTTP/2:
// enveloped request bytes in, enveloped response bytes and grpc-status trailers out. Either
// way HandlerContext, ConnectError (raw message, details), `-bin` headers, deadlines and the
// abort signal behave as in connect-node.
import type { DescService } from "@bufbuild/protobuf";
import { createConnectRouter, type ServiceImpl } from "@connectrpc/connect";
import type { UniversalHandler, UniversalHandlerOptions } from "@connectrpc/connect/protocol";
import * as grpc from "@grpc/grpc-js";
import type { RawCall, RawHandler, RawStatus } from "./bridge-call.js";
import { createRawBridge, type Bridge, type BridgeOptions } from "./raw-bridge.js";
import { directConnectHandler, fastPathSupports, requestHeaders, sendCustomHeaders, trailerMetadata } from "./connect-handler.js";
import type { TunnelSpec } from "../spec.js";

export interface ConnectBridgeOptions extends BridgeOptions {
  /** Passed to Connect's handlers (interceptors, readMaxBytes, …). */
  connect?: Partial<UniversalHandlerOptions>;
}

export function createBridge<S extends DescService>(tunnel: TunnelSpec<S>, impl: Partial<ServiceImpl<S>>, options: ConnectBridgeOptions): Bridge {
  return createRawBridge(tunnel, connectHandler(tunnel, impl, options.connect), options);
}

/** A RawHandler that runs a Connect ServiceImpl (exported for the CLI and tests). */
export function connectHandler<S extends DescService>(
  tunnel: TunnelSpec<S>,
  impl: Partial<ServiceImpl<S>>,
  handlerOptions: Partial<UniversalHandlerOptions> = {},
): RawHandler {
  // Called directly unless an option needs Connect's own handler (interceptors, …).
  if (fastPathSupports(handlerOptions)) return directConnectHandler(tunnel.service, impl, handlerOptions);
  const router = createConnectRouter({ ...handlerOptions, grpc: true, grpcWeb: false, connect: false });
  router.service(tunnel.service, impl);
  const byPath = new Map<string, UniversalHandler>();
  for (const h of router.handlers) byPath.set(h.requestPath, h);
  return (call) => runConnect(byPath.get(call.method), call);
}

async function runConnect(h: UniversalHandler | undefined, call: RawCall): Promise<RawStatus> {
  if (!h) return { code: grpc.status.UNIMPLEMENTED, details: `${call.method} is not implemented` };
  const header = requestHeaders(call);
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
  sendCustomHeaders(call, res.header);
  if (res.body) await sendMessages(res.body, call);
  return statusOfTrailer(res.trailer);
}

function statusOfTrailer(trailer: Headers | undefined): RawStatus {
  const code = Number(trailer?.get("grpc-status") ?? "0");
  let details = trailer?.get("grpc-message") ?? "";
  try {
    details = decodeURIComponent(details);
  } catch {
    // not percent-encoded after all; keep it as it is
  }
  return { code: Number.isInteger(code) ? code : grpc.status.UNKNOWN, details, metadata: trailerMetadata(trailer) };
}

/** Envelopes up to this size are sent to Connect as one chunk (one copy, one iteration less). */
const ONE_CHUNK_BYTES = 16 * 1024;

/**
 * Request payloads as gRPC length-prefixed envelopes. A plain iterator, not an async
 * generator: this sits on every call's path, and Connect adds its own layers on top.
 * A large payload goes as two chunks (header, then the payload itself) so it is not copied.
 */
function envelopes(payloads: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  return {
    [Symbol.asyncIterator]() {
      const it = payloads[Symbol.asyncIterator]();
      let rest: Uint8Array | undefined;
      return {
        async next(): Promise<IteratorResult<Uint8Array>> {
          if (rest !== undefined) {
            const value = rest;
            rest = undefined;
            return { value, done: false };
          }
          const r = await it.next();
          if (r.done) return r;
          const p = r.value;
          const small = p.length <= ONE_CHUNK_BYTES;
          const out = new Uint8Array(small ? 5 + p.length : 5);
          new DataView(out.buffer).setUint32(1, p.length);
          if (small) out.set(p, 5);
          else rest = p;
          return { value: out, done: false };
        },
        async return(value?: unknown): Promise<IteratorResult<Uint8Array>> {
          rest = undefined;
          await it.return?.();
          return { value: value as Uint8Array, done: true };
        },
      };
    },
  };
}

/**
 * Splits Connect's enveloped response body into message payloads and sends each as Connect
 * produces it; a send that fails (the call is cancelled) ends Connect's body iterator.
 */
async function sendMessages(body: AsyncIterable<Uint8Array>, call: RawCall): Promise<void> {
  let buf: Uint8Array = new Uint8Array(0);
  for await (const chunk of body) {
    buf = buf.length === 0 ? chunk : concat(buf, chunk);
    while (buf.length >= 5) {
      const len = new DataView(buf.buffer, buf.byteOffset, 5).getUint32(1);
      if (buf.length < 5 + len) break;
      if ((buf[0]! & 0x01) !== 0) throw new Error("compressed response envelope (compression is not negotiated on the tunnel)");
      const message = buf.subarray(5, 5 + len);
      buf = buf.subarray(5 + len);
      await call.send(message);
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
