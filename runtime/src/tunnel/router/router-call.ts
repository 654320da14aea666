// One client call as the router routes it: dispatched to an instance's Register stream,
// requests spliced into frames as the instance grants credit, responses written to the
// client as it drains them, status passed through unchanged. The client side is a
// ServerCall (http2/server-call.ts): metadata, deadline, messages, pause/resume, status.
import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { CancelSchema, OpenSchema, WindowUpdateSchema, type MetadataEntry, type Trailers } from "../../gen/grpcrouter/v1/tunnel_pb.js";
import { CallRejectedError, type AttemptResult, type CallAttempt, type CancelSignal, type PoolCall } from "../../resilience/index.js";
import { RouterFrame } from "../frames.js";
import { FrameError } from "../wire.js";
import { entriesFromMetadata, metadataFromEntries } from "../metadata.js";
import type { CallListener, ServerCall } from "../http2/server-call.js";
import type { RouterContext } from "./router-context.js";
import type { InstanceStream } from "./router-stream.js";
import type { TunnelMethod } from "../spec.js";
import type { TimerHandle } from "../../resilience/index.js";

const DEADLINE_SLACK_MS = 50;
const EMPTY = new Uint8Array(0);
/** The Open metadata of a call whose client sent none (only ever read). */
const NO_ENTRIES: MetadataEntry[] = Object.freeze([]) as unknown as MetadataEntry[];

/** Marks a Trailers frame by which an instance refuses a call it never started (draining). */
export const REFUSED_KEY = "grpcrouter-refused";

/**
 * A call's cancellation as the pool sees it: AbortController's `abort()` and a signal with
 * `aborted` and "abort" listeners, without an EventTarget per call (an AbortController per
 * call was a visible share of the router's CPU; the pool listens only while a call waits).
 */
export class CallAbort implements CancelSignal {
  aborted = false;
  private listeners: Array<() => void> | undefined;

  get signal(): CancelSignal {
    return this;
  }

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    const listeners = this.listeners;
    this.listeners = undefined;
    if (listeners) for (const l of listeners) l();
  }

  addEventListener(_type: "abort", listener: () => void): void {
    if (!this.aborted) (this.listeners ??= []).push(listener);
  }

  removeEventListener(_type: "abort", listener: () => void): void {
    const i = this.listeners?.indexOf(listener) ?? -1;
    if (i >= 0) this.listeners!.splice(i, 1);
  }
}

/** What a call needs of its service (ServiceRoute): admission, the pool, the streams. */
export interface CallRoute {
  readonly serviceName: string;
  /** Rate limits: a refusal's reason, or undefined when the call may go on. */
  admit(call: RoutedCall): string | undefined;
  /** The pool's record of the call across its attempts (the picker it asks for each). */
  poolCall(call: RoutedCall): PoolCall;
  /** A stream of the attempt's instance with room; undefined when the instance left meanwhile. */
  streamFor(attempt: CallAttempt): InstanceStream | undefined;
  /** Counts calls waiting for an instance (stats). */
  waiting(delta: 1 | -1): void;
  /** Set while an operator has paused the service (Admin Act): why, in words. */
  readonly paused: string | undefined;
  /** The balancing strategy in words, for the call's record. */
  policy(): string;
}

/**
 * One client call, from its first byte to its status. It owns its attempt loop (ask the
 * pool for an instance, open on one of its streams, retry or move on when the rule allows)
 * and reports its life to one CallObserver; the client side is a ServerCall, the instance
 * side an InstanceStream.
 */
export class RoutedCall implements CallListener {
  /** Call id on its current stream; 0 while not dispatched. */
  id = 0;
  readonly hubId: number;
  stream: InstanceStream | undefined;
  /** The sender's flush count when Open was queued: Open has left once the count moved on. */
  openSeq = -1;
  routingKey: string | undefined;
  /** The observer has seen `started`. */
  private announced = false;
  readonly deadline: number;
  /** The pool's record of this call across attempts. */
  private poolCall: PoolCall | undefined;
  /** The attempt running now; undefined while the call waits for an instance. */
  private attempt: CallAttempt | undefined;
  /** Aborted when the client cancels (or the call ends while waiting): ends the pool's wait. */
  readonly abort = new CallAbort();
  /** Why an undelivered call was not moved again (for its final message). */
  private undeliveredReason: string | undefined;
  /** Why the router itself refused the call (rate limit, pause, no instance), for its record. */
  private refusal: string | undefined;
  /** Reads a text header of the call, for balancers (pin, subset). */
  readonly metadataValue = (key: string): string | undefined => {
    const v = this.client.metadata.get(key)[0];
    return typeof v === "string" ? v : undefined;
  };

  private requestCredit = 0;
  /** Response bytes the instance may still send. */
  responseCredit = 0;
  /** Response bytes handed to the client, not yet granted back to the instance. */
  private pendingGrant = 0;
  /** Response bytes received from the instance and not granted back yet (what the router holds). */
  unacked = 0;
  private readonly queue: Buffer[] = [];
  private clientDone = false;
  private halfCloseSent = false;
  private paused = false;
  private sentRequests = 0;
  private headersSent = false;
  private response: Buffer | undefined;
  private finished = false;
  private deadlineTimer: TimerHandle | undefined;
  private responseCount = 0;

  constructor(
    private readonly ctx: RouterContext,
    readonly route: CallRoute,
    readonly method: TunnelMethod,
    readonly client: ServerCall,
    /** The request of a single-request method. */
    private readonly request: Buffer | undefined,
  ) {
    this.hubId = ctx.nextHubCallId();
    // On the router's clock (RouterOptions.clock), which the pool and the timer below use.
    this.deadline = Number.isFinite(client.deadline) ? ctx.clock.now() + (client.deadline - Date.now()) : Infinity;
    // Requests flow once the call has a stream (open); until then HTTP/2 holds them.
    if (!method.singleRequest) this.pause();
    // The call is its client's listener (message, halfClose, cancel): no closures per call.
    client.listen(this);
    if (Number.isFinite(this.deadline)) {
      // The router answers the client DEADLINE_EXCEEDED and tells the instance.
      this.deadlineTimer = ctx.clock.setTimeout(() => this.onDeadline(), Math.max(0, this.deadline - ctx.clock.now()));
    }
  }

  // ---- the attempt loop ----

  /** Routes the call: admission, then attempts on the instances the pool picks. */
  start(): void {
    if (this.finished) return;
    if (this.ctx.closing) return this.fail(grpc.status.UNAVAILABLE, "grpcrouter: the router is shutting down");
    const paused = this.route.paused;
    if (paused !== undefined) return this.refuse(grpc.status.UNAVAILABLE, paused);
    const refused = this.route.admit(this);
    if (refused !== undefined) return this.refuse(grpc.status.RESOURCE_EXHAUSTED, refused);
    const poolCall = this.route.poolCall(this);
    this.poolCall = poolCall;
    // Most calls find an instance with room at once: they start without a promise.
    let first: CallAttempt | Promise<CallAttempt>;
    try {
      first = poolCall.first();
    } catch (e) {
      return this.notRouted(e);
    }
    if (first instanceof Promise) this.waitFor(first);
    else this.runAttempt(first);
  }

  /** Asks the pool for the next attempt (after a backoff, when it is a retry). */
  private nextAttempt(): void {
    this.waitFor(this.poolCall!.next());
  }

  /** Waits for the pool's attempt (counted as waiting meanwhile). */
  private waitFor(attempt: Promise<CallAttempt>): void {
    this.route.waiting(1);
    attempt.then(
      (a) => {
        this.route.waiting(-1);
        this.runAttempt(a);
      },
      (e: unknown) => {
        this.route.waiting(-1);
        this.notRouted(e);
      },
    );
  }

  /** The pool refused the call (no instance, limits, deadline, cancel), or failed. */
  private notRouted(e: unknown): void {
    if (e instanceof CallRejectedError) this.refuse(e.code, e.details);
    else this.fail(grpc.status.INTERNAL, `grpcrouter: routing failed: ${(e as Error)?.message ?? e}`);
  }

  /** Runs an admitted attempt on a stream of its instance. */
  private runAttempt(attempt: CallAttempt): void {
    if (this.finished || this.ctx.closing) {
      attempt.finish({ code: grpc.status.CANCELLED, delivered: false, committed: true });
      if (!this.finished) this.fail(grpc.status.UNAVAILABLE, "grpcrouter: the router is shutting down");
      return;
    }
    const stream = this.route.streamFor(attempt);
    if (!stream) {
      // The instance left (or lost its last open stream) between admission and now.
      const d = attempt.finish({ code: grpc.status.UNAVAILABLE, delivered: false });
      if (d.retry) return this.nextAttempt();
      return this.fail(grpc.status.UNAVAILABLE, `grpcrouter: ${this.method.path} could not be delivered: ${d.reason}`);
    }
    this.attempt = attempt;
    if (this.announced)
      this.ctx.observer.decision(this, {
        kind: "attempt",
        attempt: attempt.number,
        instanceId: attempt.instance.id,
        reason: attempt.pick.reason,
        queuedMs: attempt.waitedMs,
      });
    else this.announce(attempt.instance.id, attempt.pick.reason, attempt.waitedMs);
    stream.open(this);
  }

  /**
   * The attempt failed in a way that might be retried (never delivered, or a status the
   * retry rule may retry): leaves the stream, finishes the attempt with the pool and, when
   * the rule and the budget allow, starts the next one. True when the call runs again.
   */
  private retryAttempt(result: AttemptResult): boolean {
    const a = this.attempt;
    if (!a || this.finished) return false;
    this.attempt = undefined;
    // Leave the stream before the pool frees the slot, so the next call finds its room.
    this.leaveStream();
    const d = a.finish(result);
    if (d.ejected !== undefined) this.noteEjection(a, d.ejected);
    if (d.retry && this.announced) {
      this.ctx.observer.decision(this, {
        kind: "retry",
        attempt: a.number,
        instanceId: a.instance.id,
        reason: d.reason,
        code: result.code,
        backoffMs: d.delayMs,
      });
    }
    if (!d.retry || this.ctx.closing) {
      if (!result.delivered && !d.retry) this.undeliveredReason = d.reason;
      return false;
    }
    this.resetForRetry();
    this.nextAttempt();
    return true;
  }

  /** The call's failure ejected its instance: its record says so. */
  private noteEjection(a: CallAttempt, reason: string): void {
    if (this.announced) this.ctx.observer.decision(this, { kind: "ejected", attempt: a.number, instanceId: a.instance.id, reason });
  }

  /** The router refuses the call itself (before or instead of any instance). */
  private refuse(code: grpc.status, why: string): void {
    this.refusal = why;
    this.fail(code, `grpcrouter: ${why}`);
  }

  /** `started` once per call (later attempts are decisions), then a single request. */
  private announce(instanceId: string | undefined, reason: string | undefined, queuedMs?: number): void {
    if (this.announced) return;
    this.announced = true;
    this.ctx.observer.started(this, instanceId, reason, queuedMs);
    if (this.request !== undefined) this.ctx.observer.request(this, this.request);
  }

  get isFinished(): boolean {
    return this.finished;
  }

  get metadata(): grpc.Metadata {
    return this.client.metadata;
  }

  get peer(): string {
    return this.client.peer;
  }

  /** Open has left for the instance: it may have started the call. */
  private get delivered(): boolean {
    return this.stream !== undefined && this.stream.flushSeq > this.openSeq;
  }

  /** Something of the response reached the client: the call can never run again. */
  private get committed(): boolean {
    return this.headersSent || this.responseCount > 0 || this.response !== undefined;
  }

  /** The router still holds every request sent so far (or sent none), so it could replay them. */
  private get replayable(): boolean {
    return this.method.singleRequest || this.sentRequests === 0;
  }

  /** Opens the call on `stream` (the route has picked it). */
  open(stream: InstanceStream, id: number): void {
    this.stream = stream;
    this.id = id;
    this.requestCredit = stream.requestWindow;
    this.responseCredit = this.ctx.limits.callWindow;
    this.pendingGrant = 0;
    this.unacked = 0;
    const remaining = Number.isFinite(this.deadline) ? Math.max(0, this.deadline - this.ctx.clock.now()) : undefined;
    stream.sender.control(
      id,
      RouterFrame.Open,
      OpenSchema,
      // A plain message object (what create() would make, minus its work): control-codec encodes it.
      {
        $typeName: OpenSchema.typeName,
        method: this.method.path,
        metadata: this.client.hasMetadata === false ? NO_ENTRIES : entriesFromMetadata(this.client.metadata),
        timeout: remaining === undefined ? undefined : durationFromMs(remaining),
        peer: this.client.peer,
      },
    );
    // Captured after queuing: a batch cut while queuing Open must not count as sending it.
    this.openSeq = stream.flushSeq;
    if (this.method.singleRequest) {
      this.sendRequest(this.request!);
      this.sendHalfClose();
      return;
    }
    // Requests that arrived while the call had no stream wait in the queue.
    this.flushQueue();
  }

  // ---- requests: client → instance ----

  /** @internal (CallListener) A request message from the client. */
  message(b: Buffer): void {
    if (this.finished || this.method.singleRequest) return;
    this.noteRequest(b);
    if (this.stream && this.requestCredit > 0 && this.queue.length === 0) this.sendRequest(b);
    else {
      this.queue.push(b);
      this.pause();
    }
  }

  /** @internal (CallListener) The client sent all its requests. */
  halfClose(): void {
    if (this.method.singleRequest) return;
    this.clientDone = true;
    if (this.stream && this.queue.length === 0) this.sendHalfClose();
  }

  private sendRequest(b: Buffer): void {
    this.stream!.sender.send(this.id, this.method.field, b);
    this.requestCredit -= b.length;
    this.sentRequests++;
    // A message may overdraw the window (it could be larger than the window); then wait.
    if (this.requestCredit <= 0 && !this.method.singleRequest) this.pause();
  }

  private sendHalfClose(): void {
    if (this.halfCloseSent) return;
    this.halfCloseSent = true;
    // HalfClose has no fields: its encoding is always empty.
    this.stream!.sender.send(this.id, RouterFrame.HalfClose, EMPTY);
  }

  private flushQueue(): void {
    while (this.queue.length > 0 && this.requestCredit > 0) this.sendRequest(this.queue.shift()!);
    if (this.queue.length > 0) return;
    if (this.clientDone) this.sendHalfClose();
    else if (this.requestCredit > 0) this.resume();
  }

  private pause(): void {
    if (this.paused || this.method.singleRequest) return;
    this.paused = true;
    this.client.pause();
  }

  private resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.client.resume();
  }

  onWindowUpdate(bytes: number): void {
    this.requestCredit += bytes;
    if (!this.method.singleRequest) this.flushQueue();
  }

  // ---- responses: instance → client ----

  onHeaders(entries: MetadataEntry[]): void {
    if (this.finished || this.headersSent) return;
    this.headersSent = true;
    // No Metadata for an instance that sent none (most do not).
    const md =
      entries.length === 0
        ? undefined
        : metadataFromEntries(entries, (k, why) => this.ctx.log(`call ${this.method.path}: dropped response header ${JSON.stringify(k)}: ${why}`));
    this.client.sendHeaders(md);
    this.ctx.observer.headers(this, md);
  }

  /** A response payload; the stream has checked the window. */
  onPayload(body: Uint8Array): void {
    const len = body.length;
    this.responseCredit -= len;
    this.unacked += len;
    if (this.finished) return this.grant(len);
    this.responseCount++;
    this.ctx.observer.response(this, body);
    // Frames decoded from a Buffer are Buffers already (no second view).
    const buf = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, len);
    if (this.method.singleResponse) {
      if (this.response !== undefined) throw new FrameError(`call ${this.id} (${this.method.kind} ${this.method.path}) got a second response message`);
      // Held until the trailers; one message, granted back at once.
      this.response = buf;
      this.grant(len);
      return;
    }
    this.headersSent = true;
    // Credit goes back only once HTTP/2 has taken the bytes: a slow client stalls its own
    // call, and the router holds at most one window per call.
    this.client.write(buf, () => this.grant(len));
  }

  private grant(len: number): void {
    this.pendingGrant += len;
    const stream = this.stream;
    if (!stream || stream.closed) return;
    // Batch small grants; a quarter window keeps the instance from ever running dry.
    if (this.pendingGrant * 4 < this.ctx.limits.callWindow && this.responseCredit > 0) return;
    const bytes = this.pendingGrant;
    this.pendingGrant = 0;
    this.unacked -= bytes;
    if (this.finished) return;
    this.responseCredit += bytes;
    stream.sender.control(this.id, RouterFrame.WindowUpdate, WindowUpdateSchema, create(WindowUpdateSchema, { bytes }));
  }

  onTrailers(t: Trailers): void {
    if (this.finished) return;
    // No Metadata for trailers without entries (most calls end with a bare status).
    let md =
      t.metadata.length === 0
        ? undefined
        : metadataFromEntries(t.metadata, (k, why) => this.ctx.log(`call ${this.method.path}: dropped trailer ${JSON.stringify(k)}: ${why}`));
    if (t.code !== 0 && this.attempt) {
      // The instance refused a call it never started (it is draining or full): that call
      // was never delivered. Any other failure may be retried under the pool's rule.
      const refused = md !== undefined && md.get(REFUSED_KEY).length > 0 && !this.headersSent && this.responseCount === 0;
      if (this.retryAttempt({ code: t.code, delivered: !refused, committed: this.committed, replayable: this.replayable })) return;
    }
    md?.remove(REFUSED_KEY);
    if (t.details.length > 0)
      (md ??= new grpc.Metadata()).set("grpc-status-details-bin", Buffer.from(t.details.buffer, t.details.byteOffset, t.details.byteLength));
    // A code outside gRPC's range is passed on as UNKNOWN, as a gRPC client would read it.
    this.finish(t.code <= 16 ? t.code : grpc.status.UNKNOWN, t.message, md);
  }

  /** The call's stream died. */
  onStreamLost(reason: string): void {
    if (this.finished) return;
    const delivered = this.delivered;
    if (this.retryAttempt({ code: grpc.status.UNAVAILABLE, delivered, committed: this.committed, replayable: this.replayable })) return;
    if (!delivered && this.undeliveredReason) {
      this.finish(grpc.status.UNAVAILABLE, `grpcrouter: ${this.method.path} could not be delivered (${reason}): ${this.undeliveredReason}`);
      return;
    }
    this.finish(grpc.status.UNAVAILABLE, `grpcrouter: the instance serving ${this.method.path} went away (${reason})`);
  }

  /** Fails the call from the router's side (no instance, limits, shutdown). */
  fail(code: grpc.status, message: string): void {
    this.finish(code, message);
  }

  /** Fails the call and tells its instance to stop (an oversized message). */
  failAndCancel(code: grpc.status, message: string): void {
    if (this.finished) return;
    this.sendCancel(message, false);
    this.finish(code, message);
  }

  abortForShutdown(): void {
    if (this.finished) return;
    this.sendCancel("router shutting down", false);
    this.finish(grpc.status.UNAVAILABLE, "grpcrouter: the router is shutting down");
  }

  /** Ends the call: the client gets the status, the pool and the observer hear of it. */
  private finish(code: number, message: string, md?: grpc.Metadata): void {
    if (this.finished) return;
    this.finished = true;
    this.cleanup(code);
    try {
      if (this.method.singleResponse && code === 0) {
        if (this.response !== undefined) {
          this.client.write(this.response);
          this.client.end(code, message, md);
        } else {
          code = grpc.status.INTERNAL;
          message = "grpcrouter: the instance ended the call without a response message";
          this.client.end(code, message, md);
        }
      } else this.client.end(code, message, md);
    } catch (e) {
      // The client is gone already; nothing to tell it.
      this.ctx.log(`call ${this.method.path}: could not send status: ${(e as Error).message}`);
    }
    this.ended(code, message, md);
  }

  /** The one place a call's end is reported; a call that never got an instance is announced first. */
  private ended(code: number, message: string, trailers: grpc.Metadata | undefined): void {
    this.announce(undefined, undefined);
    if (this.refusal !== undefined) this.ctx.observer.decision(this, { kind: "refused", attempt: this.poolCall?.attempts ?? 0, reason: this.refusal });
    this.ctx.observer.ended(this, code, message, trailers);
  }

  /** @internal (CallListener) The client cancelled, or (with `error`) its request broke the wire rules. */
  cancel(error?: { code: number; message: string }): void {
    if (error) return this.onRequestError(error.code, error.message);
    this.onClientCancelled();
  }

  private onClientCancelled(): void {
    if (this.finished) return;
    // The client's own deadline timer runs ahead of ours by the transit time: a cancel that
    // arrives just before the deadline is the deadline.
    const deadline = Number.isFinite(this.deadline) && this.ctx.clock.now() >= this.deadline - DEADLINE_SLACK_MS;
    this.sendCancel(deadline ? "deadline exceeded" : "cancelled by the client", deadline);
    this.finished = true;
    const code = deadline ? grpc.status.DEADLINE_EXCEEDED : grpc.status.CANCELLED;
    // A cancel is the client's doing, not the instance's: outlier detection must not see it
    // (the pool ignores attempts whose signal is aborted). A deadline does count.
    if (!deadline) this.abort.abort();
    this.cleanup(code);
    this.ended(code, deadline ? "deadline exceeded" : "cancelled", undefined);
  }

  /** The client's request broke the wire rules (too large, compressed): the client has its status already. */
  private onRequestError(code: number, message: string): void {
    if (this.finished) return;
    this.sendCancel(message, false);
    this.finish(code, message);
  }

  private onDeadline(): void {
    this.deadlineTimer = undefined;
    if (this.finished) return;
    this.sendCancel("deadline exceeded", true);
    this.finish(grpc.status.DEADLINE_EXCEEDED, "Deadline exceeded");
  }

  private sendCancel(reason: string, deadlineExceeded: boolean): void {
    const s = this.stream;
    if (!s || s.closed) return;
    s.sender.control(this.id, RouterFrame.Cancel, CancelSchema, create(CancelSchema, { reason, deadlineExceeded }));
  }

  private noteRequest(b: Buffer): void {
    this.ctx.observer.request(this, b);
  }

  /** Leaves the current stream (the attempt is over). */
  private leaveStream(): void {
    const s = this.stream;
    if (s) s.forget(this);
  }

  /** Ready for another attempt on another stream. */
  private resetForRetry(): void {
    this.stream = undefined;
    this.id = 0;
    this.openSeq = -1;
    this.halfCloseSent = false;
    this.response = undefined;
  }

  private cleanup(code: number): void {
    if (this.deadlineTimer) this.ctx.clock.clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
    this.ctx.active.delete(this);
    this.leaveStream();
    const a = this.attempt;
    this.attempt = undefined;
    if (a) {
      // Final: the pool frees the slot and feeds outlier detection; `committed` keeps the
      // retry rule from spending budget on a call that is over anyway.
      const d = a.finish({ code, delivered: this.delivered, committed: true });
      if (d.ejected !== undefined) this.noteEjection(a, d.ejected);
    } else if (!this.abort.signal.aborted) {
      // Still waiting for an instance: end the pool's wait.
      this.abort.abort();
    }
    if (this.paused) this.resume();
  }
}
