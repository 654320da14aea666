// The Connect bridge's fast path: a ServiceImpl's methods called directly on the tunnel's
// payloads. Requests are decoded with protobuf-es, the method gets a HandlerContext (request
// headers, response headers and trailers, the call's abort signal, its deadline, context
// values), responses are encoded and sent as they are produced, and a ConnectError becomes the
// gRPC status Connect itself would send (code, raw message, details as
// grpc-status-details-bin, its metadata as trailers). What Connect's gRPC handler would add
// on top — envelopes, a fetch-style request per call, its async-iterable pipeline — has no
// use inside the tunnel, where messages arrive and leave already framed.
//
// Options only Connect's own handler implements (interceptors, a request gate, context
// values from the request, a timeout cap) make createBridge use that handler instead.
import {
  create,
  fromBinary,
  isMessage,
  toBinary,
  type BinaryReadOptions,
  type BinaryWriteOptions,
  type DescMessage,
  type DescMethod,
  type DescService,
} from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createContextValues,
  createServiceImplSpec,
  type ContextValues,
  type HandlerContext,
  type MethodImplSpec,
  type ServiceImpl,
} from "@connectrpc/connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import type { UniversalHandlerOptions } from "@connectrpc/connect/protocol";
import * as grpc from "@grpc/grpc-js";
import { CallError, type RawCall, type RawHandler, type RawStatus } from "./bridge-call.js";
import { headersFromMetadata, isTransportKey, metadataFromHeaders } from "../metadata.js";

/** Whether the fast path can honour these handler options (else Connect's handler runs). */
export function fastPathSupports(o: Partial<UniversalHandlerOptions>): boolean {
  return (
    (o.interceptors?.length ?? 0) === 0 &&
    o.requestGate === undefined &&
    o.maxTimeoutMs === undefined &&
    !("contextValues" in o && o.contextValues !== undefined)
  );
}

export function directConnectHandler<S extends DescService>(service: S, impl: Partial<ServiceImpl<S>>, o: Partial<UniversalHandlerOptions> = {}): RawHandler {
  const spec = createServiceImplSpec(service, impl);
  const limits: Limits = {
    readMaxBytes: o.readMaxBytes ?? 0xffffffff,
    writeMaxBytes: o.writeMaxBytes ?? 0xffffffff,
    binary: o.binaryOptions ?? {},
    shutdownSignal: o.shutdownSignal,
  };
  const byPath = new Map<string, (call: RawCall) => Promise<RawStatus>>();
  for (const method of service.methods) {
    const m = spec.methods[method.localName as keyof typeof spec.methods] as MethodImplSpec | undefined;
    if (!m) continue;
    byPath.set(`/${service.typeName}/${method.name}`, (call) => runMethod(m, call, limits));
  }
  return (call) => {
    const run = byPath.get(call.method);
    return run ? run(call) : Promise.resolve({ code: grpc.status.UNIMPLEMENTED, details: `${call.method} is not implemented` });
  };
}

interface Limits {
  readMaxBytes: number;
  writeMaxBytes: number;
  binary: Partial<BinaryReadOptions & BinaryWriteOptions>;
  shutdownSignal: AbortSignal | undefined;
}

/**
 * The HandlerContext of one call. Headers are fetch Headers, as Connect gives them; they are
 * built when a method first touches them, since most calls never do.
 */
class BridgeHandlerContext implements HandlerContext {
  readonly requestMethod = "POST";
  readonly protocolName = "grpc";
  readonly signal: AbortSignal;
  private reqHeader: Headers | undefined;
  resHeader: Headers | undefined;
  resTrailer: Headers | undefined;
  private ctxValues: ContextValues | undefined;

  constructor(
    readonly method: DescMethod,
    private readonly call: RawCall,
    shutdownSignal: AbortSignal | undefined,
  ) {
    this.signal = shutdownSignal ? AbortSignal.any([call.signal, shutdownSignal]) : call.signal;
  }

  get service(): DescService {
    return this.method.parent;
  }

  get url(): string {
    return `http://grpcrouter.bridge${this.call.method}`;
  }

  get requestHeader(): Headers {
    return (this.reqHeader ??= requestHeaders(this.call));
  }

  get responseHeader(): Headers {
    return (this.resHeader ??= new Headers());
  }

  get responseTrailer(): Headers {
    return (this.resTrailer ??= new Headers());
  }

  get values(): ContextValues {
    return (this.ctxValues ??= createContextValues());
  }

  readonly timeoutMs = (): number | undefined => (Number.isFinite(this.call.deadline) ? this.call.deadline - Date.now() : undefined);
}

/** The request headers Connect's gRPC handler would be given for `call`. */
export function requestHeaders(call: RawCall): Headers {
  const h = headersFromMetadata(call.metadata);
  h.set("content-type", "application/grpc+proto");
  h.set("te", "trailers");
  if (Number.isFinite(call.deadline)) h.set("grpc-timeout", `${Math.max(1, Math.ceil(call.deadline - Date.now()))}m`);
  return h;
}

async function runMethod(spec: MethodImplSpec, call: RawCall, limits: Limits): Promise<RawStatus> {
  const ctx = new BridgeHandlerContext(spec.method, call, limits.shutdownSignal);
  const output = spec.method.output;
  let headersSent = false;
  const sendHeaders = () => {
    if (headersSent) return;
    headersSent = true;
    sendCustomHeaders(call, ctx.resHeader);
  };
  const send = async (value: unknown) => {
    const message = normalize(output, value);
    const bytes = toBinary(output, message, limits.binary);
    if (bytes.length > limits.writeMaxBytes)
      throw new ConnectError(`message size ${bytes.length} is larger than configured writeMaxBytes ${limits.writeMaxBytes}`, Code.ResourceExhausted);
    sendHeaders();
    await call.send(bytes);
  };
  try {
    switch (spec.kind) {
      case "unary": {
        const req = await single(call, spec.method, limits, "unary");
        await send(await spec.impl(req as never, ctx));
        break;
      }
      case "server_streaming": {
        const req = await single(call, spec.method, limits, "server-streaming");
        for await (const res of spec.impl(req as never, ctx) as AsyncIterable<unknown>) await send(res);
        break;
      }
      case "client_streaming":
        await send(await spec.impl(decodeAll(call, spec.method, limits) as never, ctx));
        break;
      case "bidi_streaming":
        for await (const res of spec.impl(decodeAll(call, spec.method, limits) as never, ctx) as AsyncIterable<unknown>) await send(res);
        break;
    }
  } catch (e) {
    sendHeaders();
    return statusOfError(e, ctx.resTrailer);
  }
  sendHeaders();
  return { code: grpc.status.OK, details: "", ...(ctx.resTrailer ? { metadata: metadataFromHeaders(ctx.resTrailer) } : {}) };
}

function normalize(schema: DescMessage, value: unknown): ReturnType<typeof create> {
  return isMessage(value, schema) ? value : create(schema, value as never);
}

function decode(method: DescMethod, payload: Uint8Array, limits: Limits): unknown {
  if (payload.length > limits.readMaxBytes)
    throw new ConnectError(`message size ${payload.length} is larger than configured readMaxBytes ${limits.readMaxBytes}`, Code.ResourceExhausted);
  try {
    return fromBinary(method.input, payload, limits.binary);
  } catch (e) {
    throw new ConnectError(`parse binary: ${(e as Error).message}`, Code.Internal);
  }
}

/** The one request of a unary or server-streaming call (Connect's rule: exactly one). */
async function single(call: RawCall, method: DescMethod, limits: Limits, kind: string): Promise<unknown> {
  const it = call.requests[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done) throw new ConnectError(`protocol error: missing input message for ${kind} method`, Code.Unimplemented);
  const second = await it.next();
  if (!second.done) throw new ConnectError(`protocol error: received extra input message for ${kind} method`, Code.Unimplemented);
  return decode(method, first.value, limits);
}

/** The requests of a client- or bidi-streaming call, decoded as the method reads them. */
function decodeAll(call: RawCall, method: DescMethod, limits: Limits): AsyncIterable<unknown> {
  return {
    [Symbol.asyncIterator]() {
      const it = call.requests[Symbol.asyncIterator]();
      return {
        async next(): Promise<IteratorResult<unknown>> {
          const r = await it.next();
          return r.done ? r : { value: decode(method, r.value, limits), done: false };
        },
        async return(value?: unknown): Promise<IteratorResult<unknown>> {
          await it.return?.();
          return { value, done: true };
        },
      };
    },
  };
}

/**
 * Sends the method's response headers as a Headers frame when they hold any of its own: only
 * custom headers need one. Without it the router sends its bare headers with the first
 * message, or answers trailers-only when there is none.
 */
export function sendCustomHeaders(call: RawCall, h: Headers | undefined): void {
  if (!h || !hasCustomHeader(h)) return;
  const md = metadataFromHeaders(h);
  if (Object.keys(md.toJSON()).length > 0) call.sendHeaders(md);
}

function hasCustomHeader(h: Headers): boolean {
  for (const key of h.keys()) if (!isTransportKey(key)) return true;
  return false;
}

/** gRPC trailers as metadata, grpc-status-details-bin (a transport key metadataFromHeaders leaves out) decoded from base64. */
export function trailerMetadata(t: Headers | undefined): grpc.Metadata {
  const md = metadataFromHeaders(t);
  const bin = t?.get("grpc-status-details-bin");
  if (bin) md.set("grpc-status-details-bin", Buffer.from(bin, "base64"));
  return md;
}

/** The status Connect's gRPC handler would send for `e`, with the method's trailers. */
function statusOfError(e: unknown, trailer: Headers | undefined): RawStatus {
  let error: ConnectError;
  if (e instanceof ConnectError) error = e;
  else if (e instanceof CallError) error = new ConnectError(e.message, e.code as Code);
  else error = new ConnectError("internal error", Code.Internal, undefined, undefined, e);
  const t = setTrailerStatus(new Headers(trailer), error);
  return { code: error.code, details: error.rawMessage, metadata: trailerMetadata(t) };
}
