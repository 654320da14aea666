// Shared by the tunnel tests: the interop service as a Connect ServiceImpl, a router and
// bridges on loopback, and a grpc-js client that speaks the interop messages.
import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { createBridge, createRouter, type Bridge, type BridgeOptions, type Router, type RouterOptions } from "../../src/tunnel/index.js";
import { defineTunnel } from "../../src/tunnel/index.js";
import {
  EchoStatusSchema,
  EmptySchema,
  SimpleResponseSchema,
  StreamingInputCallResponseSchema,
  StreamingOutputCallRequestSchema,
  StreamingOutputCallResponseSchema,
  TestService,
  type EchoStatus,
  type StreamingOutputCallResponse,
  type ResponseParameters,
} from "./gen/interop/v1/test_pb.js";

export const TestTunnel = defineTunnel(TestService, "interop.v1.TestServiceRouter", {
  EmptyCall: 16,
  UnaryCall: 17,
  StreamingOutputCall: 18,
  StreamingInputCall: 19,
  FullDuplexCall: 20,
  UnimplementedCall: 21,
});

export const ECHO_INITIAL = "x-grpc-test-echo-initial";
export const ECHO_TRAILING = "x-grpc-test-echo-trailing-bin";

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });

export interface ImplProbe {
  /** Abort reasons seen by handlers, by method. */
  aborted: string[];
  /** Response messages produced by handlers so far. */
  produced: number;
  /** Handlers that have started, by method (when given): a test cancels only after this. */
  started?: string[];
}

/** The interop TestService, as a Connect service would implement it. */
export function interopImpl(instanceId: string, probe: ImplProbe = { aborted: [], produced: 0 }): Partial<ServiceImpl<typeof TestService>> {
  const echoMetadata = (ctx: { requestHeader: Headers; responseHeader: Headers; responseTrailer: Headers }) => {
    const initial = ctx.requestHeader.get(ECHO_INITIAL);
    if (initial !== null) ctx.responseHeader.set(ECHO_INITIAL, initial);
    const trailing = ctx.requestHeader.get(ECHO_TRAILING);
    if (trailing !== null) ctx.responseTrailer.set(ECHO_TRAILING, trailing);
  };
  const failWith = (s: EchoStatus | undefined) => {
    if (!s || s.code === 0) return;
    // "details:" asks for the status itself as a detail, to see grpc-status-details-bin pass.
    const details = s.message.startsWith("details:") ? [{ desc: EchoStatusSchema, value: s }] : [];
    throw new ConnectError(s.message, s.code as Code, undefined, details);
  };
  const watch = (signal: AbortSignal, what: string) => {
    probe.started?.push(what);
    signal.addEventListener("abort", () => probe.aborted.push(`${what}: ${(signal.reason as Error)?.message ?? signal.reason}`));
  };
  async function* respond(params: ResponseParameters[], signal: AbortSignal) {
    for (const p of params) {
      if (p.intervalUs > 0) await sleep(p.intervalUs / 1000, signal);
      probe.produced++;
      yield create(StreamingOutputCallResponseSchema, { payload: { body: new Uint8Array(p.size) }, instanceId });
    }
  }
  return {
    emptyCall: () => create(EmptySchema),
    async unaryCall(req, ctx) {
      watch(ctx.signal, "unaryCall");
      echoMetadata(ctx);
      failWith(req.responseStatus);
      if (req.responseSize < 0) await sleep(-req.responseSize, ctx.signal); // a sleeping server
      return create(SimpleResponseSchema, { payload: { body: new Uint8Array(Math.max(0, req.responseSize)) }, instanceId });
    },
    async *streamingOutputCall(req, ctx) {
      watch(ctx.signal, "streamingOutputCall");
      echoMetadata(ctx);
      yield* respond(req.responseParameters, ctx.signal);
      failWith(req.responseStatus);
    },
    async streamingInputCall(reqs, ctx) {
      watch(ctx.signal, "streamingInputCall");
      let size = 0;
      for await (const r of reqs) size += r.payload?.body.length ?? 0;
      return create(StreamingInputCallResponseSchema, { aggregatedPayloadSize: size });
    },
    async *fullDuplexCall(reqs, ctx) {
      watch(ctx.signal, "fullDuplexCall");
      echoMetadata(ctx);
      for await (const r of reqs) {
        failWith(r.responseStatus);
        yield* respond(r.responseParameters, ctx.signal);
      }
    },
  };
}

export const quietLog =
  (lines: string[] = []) =>
  (line: string) =>
    void lines.push(line);

export async function startRouter(
  extra: Partial<RouterOptions> = {},
  address = "127.0.0.1:0",
): Promise<{ router: Router; target: string; port: number; logs: string[] }> {
  const logs: string[] = [];
  const router = createRouter({ services: [{ tunnel: TestTunnel }], logger: quietLog(logs), ...extra });
  const { port } = await router.listen(address);
  return { router, target: `127.0.0.1:${port}`, port, logs };
}

export async function startBridge(target: string, instanceId: string, extra: Partial<BridgeOptions> = {}, probe?: ImplProbe): Promise<Bridge> {
  const bridge = createBridge(TestTunnel, interopImpl(instanceId, probe), {
    router: target,
    instanceId,
    logger: quietLog(),
    backoff: { initialMs: 50, maxMs: 500 },
    ...extra,
  });
  await bridge.start();
  return bridge;
}

// ---- a grpc-js client for the interop messages ----

const ser =
  <D extends DescMessage>(d: D) =>
  (m: MessageShape<D>) =>
    Buffer.from(toBinary(d, m));
const de =
  <D extends DescMessage>(d: D) =>
  (b: Buffer) =>
    fromBinary(d, b);

export function methodOf(name: string, service = "interop.v1.TestService") {
  return `/${service}/${name}`;
}

export class TestClient {
  readonly raw: grpc.Client;
  constructor(target: string, credentials = grpc.credentials.createInsecure()) {
    this.raw = new grpc.Client(target, credentials, { "grpc.max_receive_message_length": -1 });
  }
  close() {
    this.raw.close();
  }

  unary<I extends DescMessage, O extends DescMessage>(
    method: string,
    input: I,
    output: O,
    req: MessageShape<I>,
    md = new grpc.Metadata(),
    options: grpc.CallOptions = {},
  ): Promise<{ res: MessageShape<O>; headers: grpc.Metadata; status: grpc.StatusObject }> {
    return new Promise((resolve, reject) => {
      let headers = new grpc.Metadata();
      let res: MessageShape<O> | undefined;
      const call = this.raw.makeUnaryRequest(method, ser(input), de(output), req, md, options, (err, value) => {
        if (err) reject(err);
        else res = value;
      });
      call.on("metadata", (m) => (headers = m));
      call.on("status", (status) => {
        if (status.code === 0) resolve({ res: res!, headers, status });
      });
    });
  }

  serverStream<I extends DescMessage, O extends DescMessage>(
    method: string,
    input: I,
    output: O,
    req: MessageShape<I>,
    md = new grpc.Metadata(),
    options: grpc.CallOptions = {},
  ) {
    return this.raw.makeServerStreamRequest(method, ser(input), de(output), req, md, options) as grpc.ClientReadableStream<MessageShape<O>>;
  }

  clientStream<I extends DescMessage, O extends DescMessage>(
    method: string,
    input: I,
    output: O,
    md: grpc.Metadata,
    options: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, res?: MessageShape<O>) => void,
  ) {
    return this.raw.makeClientStreamRequest(method, ser(input), de(output), md, options, cb) as grpc.ClientWritableStream<MessageShape<I>>;
  }

  bidi<I extends DescMessage, O extends DescMessage>(method: string, input: I, output: O, md = new grpc.Metadata(), options: grpc.CallOptions = {}) {
    return this.raw.makeBidiStreamRequest(method, ser(input), de(output), md, options) as grpc.ClientDuplexStream<MessageShape<I>, MessageShape<O>>;
  }
}

/** A StreamingOutputCall of `count` responses of `size` bytes, each `intervalMs` after the one before. */
export function pacedStream(client: TestClient, count: number, intervalMs: number, size = 4): grpc.ClientReadableStream<StreamingOutputCallResponse> {
  return client.serverStream(
    methodOf("StreamingOutputCall"),
    StreamingOutputCallRequestSchema,
    StreamingOutputCallResponseSchema,
    create(StreamingOutputCallRequestSchema, { responseParameters: Array.from({ length: count }, () => ({ size, intervalUs: intervalMs * 1000 })) }),
  );
}

/** Collects a server stream: messages, response headers and the final status. */
export function collect<T>(
  call: grpc.ClientReadableStream<T> | grpc.ClientDuplexStream<unknown, T>,
): Promise<{ messages: T[]; headers: grpc.Metadata | undefined; status: grpc.StatusObject }> {
  return new Promise((resolve) => {
    const messages: T[] = [];
    let headers: grpc.Metadata | undefined;
    call.on("metadata", (m: grpc.Metadata) => (headers = m));
    call.on("data", (m: T) => messages.push(m));
    call.on("error", () => {});
    call.on("status", (status: grpc.StatusObject) => resolve({ messages, headers, status }));
  });
}

export function errorOf(p: Promise<unknown>): Promise<grpc.ServiceError> {
  return p.then(
    () => {
      throw new Error("expected the call to fail");
    },
    (e: grpc.ServiceError) => e,
  );
}

// Generous: a loaded CI machine is slow, and only a failing run ever waits this long.
export async function waitFor(what: string, cond: () => boolean, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
