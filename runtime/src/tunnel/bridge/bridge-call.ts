// One call on the instance side of the tunnel: the raw handler's view of it (method,
// metadata, deadline, abort signal, request payloads) and the frames its answers become.
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { HeadersSchema, TrailersSchema, WindowUpdateSchema, type MetadataEntry } from "../../gen/grpcrouter/v1/tunnel_pb.js";
import { InstanceFrame } from "../frames.js";
import { entriesFromMetadata, metadataFromEntries } from "../metadata.js";
import type { FrameSender } from "../sender.js";
import type { TunnelMethod } from "../spec.js";

/** A call as a raw handler sees it: bytes in, bytes out, no message types involved. */
export interface RawCall {
  /** "/demo.v1.Echo/Say" */
  readonly method: string;
  readonly kind: TunnelMethod["kind"];
  /** The client's metadata (`-bin` values as Buffers). */
  readonly metadata: grpc.Metadata;
  /** Absolute deadline in ms since the epoch; Infinity when the client set none. */
  readonly deadline: number;
  readonly peer: string;
  /** Fires when the client cancels, the deadline passes, or the router goes away. */
  readonly signal: AbortSignal;
  /** Request payloads (serialized messages) as the client sent them. Iterate once. */
  readonly requests: AsyncIterable<Uint8Array>;
  /** Response headers; at most once, before the first payload (later calls are ignored). */
  sendHeaders(metadata: grpc.Metadata): void;
  /** Sends one response payload; resolves when the call's flow-control window allows more. */
  send(payload: Uint8Array): Promise<void>;
}

/** How the call ends, as grpc-js's StatusObject: `grpc-status-details-bin` travels in `metadata`. */
export interface RawStatus {
  code: number;
  details?: string;
  metadata?: grpc.Metadata;
}

export type RawHandler = (call: RawCall) => Promise<RawStatus>;

/** An error a handler can throw to end the call with a given status. */
export class CallError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly metadata?: grpc.Metadata,
  ) {
    super(message);
  }

  /**
   * The same error without a stack trace: ending every call aborts its signal with a reason,
   * and capturing a stack for it was a visible part of a unary call's cost. The stack would
   * only ever point into the bridge.
   */
  static quiet(code: number, message: string): CallError {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      return new CallError(code, message);
    } finally {
      Error.stackTraceLimit = limit;
    }
  }
}

/**
 * Runs `listener` once when `call` is aborted (the router cancelled it, its deadline passed,
 * its Register stream went, or it is over), at once if it is already; returns a function
 * that stops listening. The same as an "abort" listener on `call.signal`, but a call of
 * the bridge's own then needs no AbortSignal (one per call is a visible cost of a sidecar).
 */
export function onCallAbort(call: RawCall, listener: () => void): () => void {
  if (call instanceof BridgeCall) return call.onAbort(listener);
  const signal = call.signal;
  if (signal.aborted) {
    listener();
    return () => {};
  }
  signal.addEventListener("abort", listener, { once: true });
  return () => signal.removeEventListener("abort", listener);
}

/** Where `pipeRequests` puts a call's request payloads (a GrpcClientStream is one). */
export interface RequestSink {
  /** One payload; false when the sink is full (`drained` says when it takes more). */
  write(payload: Uint8Array): boolean;
  drained(): Promise<void>;
  /** The client half-closed: every payload has been written. */
  end(): void;
  /** The call was aborted before its requests ended. */
  cancel(): void;
}

/**
 * Writes `call`'s request payloads to `sink` as they come, then ends it (or cancels it when
 * the call is aborted first). The same as iterating `call.requests`, but a call of the
 * bridge's own hands each payload over synchronously, without an iterator and its promises
 * per message (what a sidecar forwarding every call to its target would pay).
 */
export function pipeRequests(call: RawCall, sink: RequestSink): void {
  if (call instanceof BridgeCall) call.pipeTo(sink);
  else void iterateInto(call, sink);
}

async function iterateInto(call: RawCall, sink: RequestSink): Promise<void> {
  try {
    for await (const payload of call.requests) {
      if (!sink.write(payload)) await sink.drained();
    }
    sink.end();
  } catch {
    sink.cancel();
  }
}

/**
 * Sends one response payload like `call.send`, but returns undefined (no promise) when the
 * call's flow-control window takes more at once; else a promise that settles as
 * `call.send`'s would. Under way, a sidecar relays messages without waiting for a tick each.
 */
export function sendResponse(call: RawCall, payload: Uint8Array): Promise<void> | undefined {
  return call instanceof BridgeCall ? call.sendNow(payload) : call.send(payload);
}

/**
 * The client's metadata as the tunnel delivered it (entries), while the handler has not
 * asked for it as grpc-js Metadata (which it may have changed); else that Metadata. A
 * sidecar turns entries into HTTP/2 headers directly.
 */
export function requestMetadata(call: RawCall): grpc.Metadata | readonly MetadataEntry[] {
  return call instanceof BridgeCall ? call.metadataOrEntries() : call.metadata;
}

/**
 * Ends `call` with `status` at once when it is the bridge's own (the handler still returns
 * the status; ending twice does nothing): its Trailers then leave in the same write as the
 * response sent just before, where waiting for the handler's promise would send them in
 * one of their own.
 */
export function finishCall(call: RawCall, status: RawStatus): void {
  if (call instanceof BridgeCall) call.finish(status);
}

export interface CallHost {
  readonly sender: FrameSender;
  readonly requestWindow: number;
  readonly maxMessageBytes: number;
  ended(call: BridgeCall): void;
}

const EMPTY = new Uint8Array(0);

export class BridgeCall implements RawCall {
  /**
   * Made on the first read of `signal`: most handlers never read it, and an AbortController
   * per call (and the abort event when the call ends) was the largest single cost of a
   * unary call here.
   */
  private abort: AbortController | undefined;
  /** The call was cancelled or is over; `reason` says why (made when first asked for). */
  private aborted = false;
  private abortReason: unknown;
  /** onCallAbort's listeners (without an AbortSignal). */
  private abortListeners: Array<() => void> | undefined;
  /** Built from the Open frame's entries on first use. */
  private md: grpc.Metadata | undefined;
  private readonly queue: Uint8Array[] = [];
  private requestsEnded = false;
  private wakeReader: (() => void) | undefined;
  /** pipeRequests' sink: payloads go there as they arrive. */
  private sink: RequestSink | undefined;
  private pendingGrant = 0;
  private responseCredit: number;
  /** Senders waiting for window; made when the first one waits (most calls never do). */
  private creditWaiters: Array<{ resolve: () => void; reject: (e: unknown) => void }> | undefined;
  private headersSent = false;
  finished = false;
  private deadlineTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly host: CallHost,
    readonly id: number,
    readonly tunnelMethod: TunnelMethod,
    private readonly entries: readonly MetadataEntry[],
    readonly deadline: number,
    readonly peer: string,
    responseWindow: number,
  ) {
    this.responseCredit = responseWindow;
    if (Number.isFinite(deadline)) {
      this.deadlineTimer = setTimeout(
        () => {
          this.deadlineTimer = undefined;
          this.cancel("deadline exceeded", true);
          this.finish({ code: grpc.status.DEADLINE_EXCEEDED, details: "Deadline exceeded" });
        },
        Math.max(0, deadline - Date.now()),
      );
    }
  }

  get method(): string {
    return this.tunnelMethod.path;
  }

  get metadata(): grpc.Metadata {
    return (this.md ??= metadataFromEntries(this.entries));
  }

  get signal(): AbortSignal {
    if (!this.abort) {
      this.abort = new AbortController();
      if (this.aborted) this.abort.abort(this.reason);
    }
    return this.abort.signal;
  }

  /** See requestMetadata. */
  metadataOrEntries(): grpc.Metadata | readonly MetadataEntry[] {
    return this.md ?? this.entries;
  }

  get requests(): AsyncIterable<Uint8Array> {
    return new Requests(this);
  }

  /** Why the call was aborted: the router's cancel, or (made only when asked for) "call is over". */
  private get reason(): unknown {
    // Without a stack trace: the stack would only ever point into the bridge.
    return (this.abortReason ??= CallError.quiet(grpc.status.CANCELLED, "call is over"));
  }

  private abortWith(reason?: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.abortReason = reason;
    this.abort?.abort(this.reason);
    const listeners = this.abortListeners;
    this.abortListeners = undefined;
    if (listeners) for (const l of listeners) l();
  }

  /** See onCallAbort. */
  onAbort(listener: () => void): () => void {
    if (this.aborted) {
      listener();
      return () => {};
    }
    (this.abortListeners ??= []).push(listener);
    return () => {
      const listeners = this.abortListeners;
      if (!listeners) return;
      // Usually the only one (a sidecar's call): no splice, no array left behind.
      if (listeners.length === 1 && listeners[0] === listener) this.abortListeners = undefined;
      else {
        const i = listeners.indexOf(listener);
        if (i >= 0) listeners.splice(i, 1);
      }
    };
  }

  get kind(): TunnelMethod["kind"] {
    return this.tunnelMethod.kind;
  }

  // ---- requests ----

  onPayload(body: Uint8Array): void {
    if (this.finished || this.requestsEnded) return;
    this.queue.push(body);
    this.wake();
  }

  onHalfClose(): void {
    this.requestsEnded = true;
    this.wake();
  }

  private wake(): void {
    if (this.sink) return this.pump();
    const w = this.wakeReader;
    this.wakeReader = undefined;
    w?.();
  }

  /** See pipeRequests. */
  pipeTo(sink: RequestSink): void {
    this.sink = sink;
    this.pump();
  }

  /** Moves queued payloads to the sink until it is full or they run out. */
  private pump(): void {
    const sink = this.sink!;
    for (let b = this.takeRequest(); b !== undefined; b = this.takeRequest()) {
      if (!sink.write(b)) {
        // Full: nothing more until it drains (payloads arriving meanwhile wait in the queue).
        this.sink = undefined;
        void sink.drained().then(() => this.pipeTo(sink));
        return;
      }
    }
    if (this.requestsEnded || this.aborted) {
      this.sink = undefined;
      if (this.requestsEnded) sink.end();
      else sink.cancel();
    }
  }

  /** The next queued request payload, its bytes granted back to the router; undefined when none waits. */
  private takeRequest(): Uint8Array | undefined {
    const b = this.queue.shift();
    if (b !== undefined) this.consumed(b.length);
    return b;
  }

  /** @internal The next request payload (Requests.next). */
  async nextRequest(): Promise<IteratorResult<Uint8Array>> {
    for (;;) {
      const b = this.takeRequest();
      if (b !== undefined) return { value: b, done: false };
      if (this.requestsEnded) return { value: undefined, done: true };
      if (this.aborted) throw this.reason;
      await new Promise<void>((resolve) => {
        this.wakeReader = resolve;
      });
    }
  }

  /** Grants the router credit for request bytes the handler has taken. */
  private consumed(n: number): void {
    this.pendingGrant += n;
    if (this.finished || this.requestsEnded) return;
    if (this.pendingGrant * 4 < this.host.requestWindow) return;
    const bytes = this.pendingGrant;
    this.pendingGrant = 0;
    this.host.sender.control(this.id, InstanceFrame.WindowUpdate, WindowUpdateSchema, create(WindowUpdateSchema, { bytes }));
  }

  // ---- responses ----

  sendHeaders(md: grpc.Metadata): void {
    if (this.finished || this.headersSent) return;
    this.headersSent = true;
    this.host.sender.control(this.id, InstanceFrame.Headers, HeadersSchema, create(HeadersSchema, { metadata: entriesFromMetadata(md) }));
  }

  send(payload: Uint8Array): Promise<void> {
    return this.sendNow(payload) ?? Promise.resolve();
  }

  /** See sendResponse. */
  sendNow(payload: Uint8Array): Promise<void> | undefined {
    if (this.finished) return Promise.reject(this.reason);
    if (payload.length > this.host.maxMessageBytes) {
      return Promise.reject(
        new CallError(grpc.status.RESOURCE_EXHAUSTED, `response message of ${payload.length} bytes is larger than the limit of ${this.host.maxMessageBytes}`),
      );
    }
    this.headersSent = true;
    this.host.sender.send(this.id, this.tunnelMethod.field, payload);
    this.responseCredit -= payload.length;
    if (this.responseCredit > 0) return undefined;
    return new Promise((resolve, reject) => (this.creditWaiters ??= []).push({ resolve, reject }));
  }

  onWindowUpdate(bytes: number): void {
    this.responseCredit += bytes;
    if (this.responseCredit <= 0) return;
    const waiters = this.creditWaiters;
    if (!waiters) return;
    this.creditWaiters = undefined;
    for (const w of waiters) w.resolve();
  }

  /** The router cancelled the call, or its stream is gone: the handler's signal fires. */
  cancel(reason: string, deadlineExceeded: boolean): void {
    if (!this.aborted) this.abortWith(new CallError(deadlineExceeded ? grpc.status.DEADLINE_EXCEEDED : grpc.status.CANCELLED, reason));
    this.wake();
    this.rejectWaiters();
  }

  /** Ends the call with Trailers (once). */
  finish(status: RawStatus): void {
    if (this.finished) return;
    this.finished = true;
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    // grpc-status-details-bin travels as `details`; entriesFromMetadata leaves it (a transport key) out.
    const md = status.metadata;
    const details = md?.get("grpc-status-details-bin")[0];
    this.host.sender.control(
      this.id,
      InstanceFrame.Trailers,
      TrailersSchema,
      // A plain message object (what create() would make, minus its work): control-codec encodes it.
      {
        $typeName: TrailersSchema.typeName,
        code: status.code,
        message: status.details ?? "",
        details: details instanceof Buffer ? details : EMPTY,
        metadata: entriesFromMetadata(md),
      },
    );
    this.cleanup();
  }

  /** Drops the call without Trailers (the router has forgotten it already). */
  drop(reason: string, deadlineExceeded: boolean): void {
    this.cancel(reason, deadlineExceeded);
    if (this.finished) return;
    this.finished = true;
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.cleanup();
  }

  private cleanup(): void {
    this.abortWith();
    this.wake();
    this.rejectWaiters();
    this.host.ended(this);
  }

  private rejectWaiters(): void {
    const waiters = this.creditWaiters;
    if (!waiters) return;
    this.creditWaiters = undefined;
    for (const w of waiters) w.reject(this.reason);
  }
}

/** A call's requests as an async iterable that is its own iterator: one object per call, no closures. */
class Requests implements AsyncIterable<Uint8Array>, AsyncIterator<Uint8Array> {
  constructor(private readonly call: BridgeCall) {}

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return this;
  }

  next(): Promise<IteratorResult<Uint8Array>> {
    return this.call.nextRequest();
  }
}
