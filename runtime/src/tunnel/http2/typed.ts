// Typed methods on a GrpcServer for the services off the hot path (health, reflection,
// Admin): protobuf-es decodes requests and encodes responses; a handler throws StatusError
// for a status other than OK.
import { fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import type { GrpcServer } from "./server.js";
import type { ServerCall } from "./server-call.js";

const MAX_REQUEST_BYTES = 4 * 1024 * 1024;

/** Ends a typed call with `code` and `message`. */
export class StatusError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

/** Where a streaming handler writes its responses. */
export interface MessageSink<O extends DescMessage> {
  /** False when the stream's buffer is full: await `drained()` before writing more. */
  write(message: MessageShape<O>): boolean;
  drained(): Promise<void>;
  end(code?: grpc.status, message?: string): void;
  /** Aborted once the call is over (ended, or cancelled by the client). */
  readonly signal: AbortSignal;
}

function sinkOf<O extends DescMessage>(call: ServerCall, output: O, abort: AbortController): MessageSink<O> {
  return {
    write: (m) => call.write(Buffer.from(toBinary(output, m))),
    drained: () => call.drained(),
    end: (code = grpc.status.OK, message = "") => {
      call.end(code, message);
      abort.abort();
    },
    signal: abort.signal,
  };
}

function decode<I extends DescMessage>(call: ServerCall, input: I, bytes: Buffer): MessageShape<I> | undefined {
  try {
    return fromBinary(input, bytes);
  } catch (e) {
    call.end(grpc.status.INTERNAL, `cannot decode the ${input.typeName} request: ${(e as Error).message}`);
    return undefined;
  }
}

function endWithError(call: ServerCall, e: unknown): void {
  if (e instanceof StatusError) call.end(e.code, e.message);
  else call.end(grpc.status.UNKNOWN, (e as Error)?.message ?? String(e));
}

/** One request, one response. */
export function serveUnary<I extends DescMessage, O extends DescMessage>(
  server: GrpcServer,
  path: string,
  input: I,
  output: O,
  fn: (request: MessageShape<I>, call: ServerCall) => MessageShape<O> | Promise<MessageShape<O>>,
): void {
  server.add(path, {
    singleRequest: true,
    maxRequestBytes: MAX_REQUEST_BYTES,
    handle: (call, bytes) => {
      const request = decode(call, input, bytes!);
      if (request === undefined) return;
      Promise.resolve()
        .then(() => fn(request, call))
        .then(
          (response) => {
            call.write(Buffer.from(toBinary(output, response)));
            call.end(grpc.status.OK, "");
          },
          (e: unknown) => endWithError(call, e),
        );
    },
  });
}

/** One request, a stream of responses. */
export function serveServerStream<I extends DescMessage, O extends DescMessage>(
  server: GrpcServer,
  path: string,
  input: I,
  output: O,
  fn: (request: MessageShape<I>, sink: MessageSink<O>, call: ServerCall) => void | Promise<void>,
): void {
  server.add(path, {
    singleRequest: true,
    maxRequestBytes: MAX_REQUEST_BYTES,
    handle: (call, bytes) => {
      const request = decode(call, input, bytes!);
      if (request === undefined) return;
      const abort = new AbortController();
      call.listen({ message: () => {}, halfClose: () => {}, cancel: () => abort.abort() });
      Promise.resolve()
        .then(() => fn(request, sinkOf(call, output, abort), call))
        .catch((e: unknown) => {
          endWithError(call, e);
          abort.abort();
        });
    },
  });
}

/** Streams both ways: `fn` returns what to do with each request and the client's half-close. */
export function serveBidi<I extends DescMessage, O extends DescMessage>(
  server: GrpcServer,
  path: string,
  input: I,
  output: O,
  fn: (sink: MessageSink<O>, call: ServerCall) => { message(request: MessageShape<I>): void; halfClose(): void },
): void {
  server.add(path, {
    singleRequest: false,
    maxRequestBytes: MAX_REQUEST_BYTES,
    handle: (call) => {
      const abort = new AbortController();
      const handlers = fn(sinkOf(call, output, abort), call);
      call.listen({
        message: (bytes) => {
          const request = decode(call, input, bytes);
          if (request === undefined) return abort.abort();
          try {
            handlers.message(request);
          } catch (e) {
            endWithError(call, e);
            abort.abort();
          }
        },
        halfClose: () => handlers.halfClose(),
        cancel: () => abort.abort(),
      });
    },
  });
}
