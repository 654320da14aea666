// One client call as the router routes it: dispatched to an instance's Register stream,
// requests spliced into frames as the instance grants credit, responses written to the
// client as it drains them, status passed through unchanged.
import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import {
  CancelSchema,
  OpenSchema,
  WindowUpdateSchema,
  type MetadataEntry,
  type Trailers,
} from "../gen/grpcrouter/v1/tunnel_pb.js";
import type { AttemptResult, CallAttempt, PoolCall } from "../resilience/index.js";
import { RouterFrame } from "./frames.js";
import { FrameError } from "./wire.js";
import { oversized } from "./message-limits.js";
import { entriesFromMetadata, metadataFromEntries } from "./metadata.js";
import type { RouterContext } from "./router-context.js";
import type { InstanceStream } from "./router-stream.js";
import type { TunnelMethod } from "./spec.js";

type AnyServerCall =
  | grpc.ServerUnaryCall<Buffer, Buffer>
  | grpc.ServerReadableStream<Buffer, Buffer>
  | grpc.ServerWritableStream<Buffer, Buffer>
  | grpc.ServerDuplexStream<Buffer, Buffer>;

type ReadableCall = grpc.ServerReadableStream<Buffer, Buffer> | grpc.ServerDuplexStream<Buffer, Buffer>;
type WritableCall = grpc.ServerWritableStream<Buffer, Buffer> | grpc.ServerDuplexStream<Buffer, Buffer>;

const DEADLINE_SLACK_MS = 50;
const EMPTY = new Uint8Array(0);

/** Marks a Trailers frame by which an instance refuses a call it never started (draining). */
export const REFUSED_KEY = "grpcrouter-refused";

export interface CallRoute {
  readonly serviceName: string;
  /**
   * An attempt failed in a way that might be retried (never delivered, or a status the
   * retry rule may retry): finishes the attempt with the pool and, when the rule and the
   * budget allow, starts the next one. True when the call runs again.
   */
  retry(call: RoutedCall, attempt: CallAttempt, result: AttemptResult): boolean;
  /** Publishes callStarted (without an instance) for a call that ends before it got one. */
  announce(call: RoutedCall): void;
}

export class RoutedCall {
  /** Call id on its current stream; 0 while not dispatched. */
  id = 0;
  readonly hubId: number;
  stream: InstanceStream | undefined;
  /** The sender's flush count when Open was queued: Open has left once the count moved on. */
  openSeq = -1;
  routingKey: string | undefined;
  /** The admin hub has seen callStarted. */
  hubStarted = false;
  /** Attempts after the first (moved unstarted, or retried). */
  retries = 0;
  readonly deadline: number;
  /** The pool's record of this call across attempts (set by the route). */
  poolCall: PoolCall | undefined;
  /** The attempt running now; undefined while the call waits for an instance. */
  attempt: CallAttempt | undefined;
  /** Aborted when the client cancels (or the call ends while waiting): ends the pool's wait. */
  readonly abort = new AbortController();
  /** Why an undelivered call was not moved again (for its final message). */
  undeliveredReason: string | undefined;
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
  private reading = false;
  private sentRequests = 0;
  private headersSent = false;
  private response: Buffer | undefined;
  private finished = false;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private requestCount = 0;
  private responseCount = 0;

  constructor(
    private readonly ctx: RouterContext,
    readonly route: CallRoute,
    readonly method: TunnelMethod,
    readonly client: AnyServerCall,
    private readonly callback: grpc.sendUnaryData<Buffer> | undefined,
    /** The request of a single-request method. */
    private readonly request: Buffer | undefined,
  ) {
    this.hubId = ctx.nextHubCallId();
    const d = client.getDeadline();
    this.deadline = d instanceof Date ? d.getTime() : d;
    (client as unknown as NodeJS.EventEmitter).on("cancelled", () => this.onClientCancelled());
    if (Number.isFinite(this.deadline)) {
      const ms = Math.max(0, this.deadline - Date.now());
      // grpc-js answers the client itself at the deadline; this timer tells the instance.
      this.deadlineTimer = setTimeout(() => this.onDeadline(), ms + 1);
    }
  }

  /** Publishes the request of a single-request call (after callStarted, so the hub knows the call). */
  publishInitialRequest(): void {
    if (this.request !== undefined) this.noteRequest(this.request);
  }

  get isFinished(): boolean {
    return this.finished;
  }

  get metadata(): grpc.Metadata {
    return this.client.metadata;
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
    const remaining = Number.isFinite(this.deadline) ? Math.max(0, this.deadline - Date.now()) : undefined;
    stream.sender.control(
      id,
      RouterFrame.Open,
      OpenSchema,
      create(OpenSchema, {
        method: this.method.path,
        metadata: entriesFromMetadata(this.client.metadata),
        timeout: remaining === undefined ? undefined : durationFromMs(remaining),
        peer: this.client.getPeer(),
      }),
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
    if (!this.reading) {
      this.reading = true;
      const r = this.client as ReadableCall;
      r.on("data", (b: Buffer) => this.onClientData(b));
      r.on("end", () => this.onClientEnd());
      r.on("error", () => {});
    }
  }

  // ---- requests: client → instance ----

  private onClientData(b: Buffer): void {
    if (this.finished) return;
    // security: one limit everywhere (message-limits.ts); an oversized request fails this call only.
    const tooBig = oversized("request", b.length, this.ctx.limits.maxMessageBytes);
    if (tooBig) return this.failAndCancel(grpc.status.RESOURCE_EXHAUSTED, `grpcrouter: ${tooBig}`);
    this.noteRequest(b);
    if (this.stream && this.requestCredit > 0 && this.queue.length === 0) this.sendRequest(b);
    else {
      this.queue.push(b);
      this.pause();
    }
  }

  private onClientEnd(): void {
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
    (this.client as ReadableCall).pause();
  }

  private resume(): void {
    if (!this.paused) return;
    this.paused = false;
    (this.client as ReadableCall).resume();
  }

  onWindowUpdate(bytes: number): void {
    this.requestCredit += bytes;
    if (!this.method.singleRequest) this.flushQueue();
  }

  // ---- responses: instance → client ----

  onHeaders(entries: MetadataEntry[]): void {
    if (this.finished || this.headersSent) return;
    this.headersSent = true;
    const md = metadataFromEntries(entries, (k, why) => this.ctx.log(`call ${this.method.path}: dropped response header ${JSON.stringify(k)}: ${why}`));
    this.client.sendMetadata(md);
    this.ctx.hub?.publish({ type: "callHeaders", callId: this.hubId, metadata: md });
  }

  /** A response payload; the stream has checked the window. */
  onPayload(body: Uint8Array): void {
    const len = body.length;
    this.responseCredit -= len;
    this.unacked += len;
    if (this.finished) return this.grant(len);
    this.responseCount++;
    const hub = this.ctx.hub;
    if (hub?.wantsMessages) {
      hub.publish({ type: "callMessage", callId: this.hubId, direction: "response", size: len, ...(hub.wantsBodies ? { payload: body } : {}) });
    }
    const buf = Buffer.from(body.buffer, body.byteOffset, len);
    if (this.method.singleResponse) {
      if (this.response !== undefined) throw new FrameError(`call ${this.id} (${this.method.kind} ${this.method.path}) got a second response message`);
      // Held until the trailers; one message, granted back at once.
      this.response = buf;
      this.grant(len);
      return;
    }
    this.headersSent = true;
    // Credit goes back only once grpc-js has handed the bytes to HTTP/2: a slow client
    // stalls its own call, and the router holds at most one window per call.
    (this.client as WritableCall).write(buf, () => this.grant(len));
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
    const md = metadataFromEntries(t.metadata, (k, why) => this.ctx.log(`call ${this.method.path}: dropped trailer ${JSON.stringify(k)}: ${why}`));
    if (t.code !== 0 && this.attempt) {
      // The instance refused a call it never started (it is draining or full): that call
      // was never delivered. Any other failure may be retried under the pool's rule.
      const refused = md.get(REFUSED_KEY).length > 0 && !this.headersSent && this.responseCount === 0;
      if (this.retryAttempt({ code: t.code, delivered: !refused, committed: this.committed, replayable: this.replayable })) return;
    }
    md.remove(REFUSED_KEY);
    if (t.details.length > 0) md.set("grpc-status-details-bin", Buffer.from(t.details.buffer, t.details.byteOffset, t.details.byteLength));
    // A code outside gRPC's range is passed on as UNKNOWN, as a gRPC client would read it.
    this.finish(t.code <= 16 ? t.code : grpc.status.UNKNOWN, t.message, md);
  }

  /** Offers the failed attempt to the retry rule; on a retry, leaves the stream first. */
  private retryAttempt(result: AttemptResult): boolean {
    const a = this.attempt;
    if (!a || this.finished) return false;
    this.attempt = undefined;
    // Leave the stream before the pool frees the slot, so the next call finds its room.
    this.leaveStream();
    if (this.route.retry(this, a, result)) {
      this.resetForRetry();
      return true;
    }
    return false;
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

  private finish(code: number, message: string, md: grpc.Metadata = new grpc.Metadata()): void {
    if (this.finished) return;
    this.finished = true;
    this.cleanup(code);
    try {
      if (this.method.singleResponse) {
        const cb = this.callback!;
        if (code === 0) {
          if (this.response !== undefined) cb(null, this.response, md);
          else cb({ code: grpc.status.INTERNAL, details: "grpcrouter: the instance ended the call without a response message", metadata: md } as grpc.ServiceError);
        } else cb({ code, details: message, metadata: md } as grpc.ServiceError);
      } else {
        const w = this.client as WritableCall;
        if (code === 0) w.end(md);
        else w.emit("error", { code, details: message, metadata: md });
      }
    } catch (e) {
      // The client is gone already; nothing to tell it.
      this.ctx.log(`call ${this.method.path}: could not send status: ${(e as Error).message}`);
    }
    if (this.ctx.hub) {
      // A call that ends while waiting for an instance has not been announced yet.
      if (!this.hubStarted) this.route.announce(this);
      this.ctx.hub.publish({ type: "callEnded", callId: this.hubId, code, message, trailers: md });
    }
  }

  private onClientCancelled(): void {
    if (this.finished) return;
    // The client's own deadline timer runs ahead of ours by the transit time: a cancel that
    // arrives just before the deadline is the deadline.
    const deadline = Number.isFinite(this.deadline) && Date.now() >= this.deadline - DEADLINE_SLACK_MS;
    this.sendCancel(deadline ? "deadline exceeded" : "cancelled by the client", deadline);
    this.finished = true;
    const code = deadline ? grpc.status.DEADLINE_EXCEEDED : grpc.status.CANCELLED;
    // A cancel is the client's doing, not the instance's: outlier detection must not see it
    // (the pool ignores attempts whose signal is aborted). A deadline does count.
    if (!deadline) this.abort.abort();
    this.cleanup(code);
    if (this.ctx.hub) {
      if (!this.hubStarted) this.route.announce(this);
      this.ctx.hub.publish({ type: "callEnded", callId: this.hubId, code, message: deadline ? "deadline exceeded" : "cancelled" });
    }
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
    this.requestCount++;
    const hub = this.ctx.hub;
    if (hub?.wantsMessages) {
      hub.publish({ type: "callMessage", callId: this.hubId, direction: "request", size: b.length, ...(hub.wantsBodies ? { payload: b } : {}) });
    }
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
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
    this.ctx.active.delete(this);
    this.leaveStream();
    const a = this.attempt;
    this.attempt = undefined;
    if (a) {
      // Final: the pool frees the slot and feeds outlier detection; `committed` keeps the
      // retry rule from spending budget on a call that is over anyway.
      a.finish({ code, delivered: this.delivered, committed: true });
    } else if (!this.abort.signal.aborted) {
      // Still waiting for an instance: end the pool's wait.
      this.abort.abort();
    }
    if (this.paused) this.resume();
  }
}
