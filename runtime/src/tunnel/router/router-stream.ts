// One Register stream on the router: Hello/Welcome, the frames of its calls, heartbeats.
// Anything malformed or hostile the instance sends closes this stream only, with a reason
// in the log; its calls fail (or move to another instance when they never left).
import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import {
  DrainSchema,
  HeadersSchema,
  HealthReportSchema,
  HealthReport_Status,
  HelloSchema,
  ProtocolVersion,
  TrailersSchema,
  WelcomeSchema,
  type Hello,
} from "../../gen/grpcrouter/v1/tunnel_pb.js";
import { InstanceFrame, RouterFrame, decodeControl, type Frame } from "../frames.js";
import type { CallListener, CallTransport, ServerCall } from "../http2/server-call.js";
import { ABANDON_GRACE_MS } from "../http2/session-streams.js";
import type { RoutedCall } from "./router-call.js";
import type { HelloInfo, RouterContext } from "./router-context.js";
import { ANONYMOUS_PRINCIPAL, principalOf } from "../instance-identity.js";
import type { RouterInstance, ServiceRoute } from "./router-registry.js";
import type { StreamMeter } from "../byte-budget.js";
import { oversized } from "../message-limits.js";
import { PUSHBACK_KEY } from "../registration-limits.js";
import { acceptedWelcome } from "./welcome.js";
import type { TimerHandle } from "../../resilience/index.js";
import { FrameError } from "../wire.js";
import { DEFAULT_WINDOW, TunnelEndpoint, type EndpointSide } from "../protocol/tunnel-endpoint.js";

/** The router's end: it sends RouterFrames and reads InstanceFrames. */
const ROUTER_SIDE: EndpointSide = { sends: RouterFrame, reads: InstanceFrame, malformed: "malformed Register message" };

/** Who is told when a stream is over (the router: one for all its streams, not a closure each). */
export interface StreamOwner {
  streamClosed(s: InstanceStream): void;
}

/**
 * What the transport tells a Register stream: one small object per stream (an object literal
 * of three closures was ≈ 150 bytes more, kept by each of thousands of idle streams).
 */
class RegisterListener implements CallListener {
  constructor(private readonly s: InstanceStream) {}
  message(b: Buffer): void {
    this.s.receive(b);
  }
  halfClose(): void {
    this.s.transportEnded();
  }
  cancel(error?: { code: number; message: string }): void {
    this.s.transportEnded(error ? `stream error: ${error.message}` : "the Register stream was cancelled");
  }
}

/**
 * The router's end of one Register stream (protocol/tunnel-endpoint.ts has what both ends
 * share). Its handshake is Hello (then authorize, then Welcome); its calls are RoutedCalls.
 */
export class InstanceStream extends TunnelEndpoint<RoutedCall> {
  instance: RouterInstance | undefined;
  /**
   * The Hello, from its arrival until the registry has read it (addStream): 10,000 streams
   * would keep ≈ 310 bytes each of it for nothing. Afterwards only these remain. While it is
   * here during the handshake, the authorize hook has not answered yet.
   */
  hello: Hello | undefined;
  /** The instance's id, from its Hello ("" before one came). */
  instanceId = "";
  /** The Hello's session (the bridge's connection), which a reconnect may name as replaced. */
  session = "";
  requestWindow = DEFAULT_WINDOW;
  readonly peer: string;
  /** Dropped once Hello came (a cleared timer kept per stream is memory for nothing). */
  private helloTimer: TimerHandle | undefined;
  readonly meter: StreamMeter;
  /** Who the instance is (instance-identity.ts), known from its Hello. */
  principal = ANONYMOUS_PRINCIPAL;

  constructor(
    private readonly ctx: RouterContext,
    readonly route: ServiceRoute,
    private readonly duplex: ServerCall,
    /** Told once when the stream is over. */
    private readonly owner: StreamOwner,
  ) {
    super(ctx.clock, ROUTER_SIDE);
    this.peer = duplex.peer;
    // security: queued and held bytes are bounded by pausing this stream (byte-budget.ts).
    this.meter = ctx.budget.meter(duplex, () => this.bufferedBytes());
    duplex.listen(new RegisterListener(this));
    this.helloTimer = ctx.clock.setTimeout(() => {
      if (this.instanceId === "" && !this.closed) this.fail(`no Hello within ${ctx.limits.helloTimeoutMs} ms`);
    }, ctx.limits.helloTimeoutMs);
  }

  /**
   * @internal The transport ended: the instance half-closed (no `cancelled`: a graceful end),
   * or the stream was cancelled or broke the wire rules (`cancelled` says how).
   */
  transportEnded(cancelled?: string): void {
    if (cancelled === undefined) this.close("the instance ended its Register stream", true);
    else this.close(cancelled);
  }

  protected write(message: Buffer): void {
    try {
      // Never waits on write(): the meter stops reading the stream while too much is queued.
      this.meter.write(this.duplex, message);
    } catch {
      this.close("write failed");
    }
  }

  /** How the stream reached the router (read from the connection, not kept per stream). */
  get transport(): CallTransport | undefined {
    return this.duplex.transport;
  }

  get label(): string {
    return this.instanceId !== ""
      ? `instance ${JSON.stringify(this.instanceId)} of ${this.route.serviceName} (${this.peer})`
      : `Register stream from ${this.peer}`;
  }

  /** No new calls: either end sent Drain; the router ends the stream once its calls have. */
  get draining(): boolean {
    return this.endingWhenIdle;
  }

  /** Calls this stream may still take. */
  get room(): number {
    return this.phase === "open" && !this.draining ? this.ctx.limits.callsPerStream - this.calls.size : 0;
  }

  /** Opens a call on this stream. */
  open(call: RoutedCall): void {
    const id = this.maxCallId + 1;
    this.addCall(id, call);
    call.open(this, id);
  }

  forget(call: RoutedCall): void {
    if (call.stream === this) this.removeCall(call.id, call);
  }

  /**
   * An instance's drained stream with no call left is ended by the router: only the router
   * knows that no Open is on its way, so the instance waits for this end instead of closing
   * on its own (which could catch a crossing Open).
   */
  protected idle(): void {
    setImmediate(() => {
      // Still draining (endWhenIdle is never undone); the stream may have closed meanwhile.
      if (this.calls.size === 0 && this.phase === "open") this.end();
    });
  }

  bufferedBytes(): number {
    let n = 0;
    for (const c of this.calls.values()) n += c.unacked;
    return n;
  }

  /**
   * Heartbeat tick from the router (every quarter interval): ping when nothing went either
   * way for an interval (so a peer that only listens is asked too), close when the peer was
   * silent for the timeout (default two intervals: it missed a Ping's answer).
   */
  tick(now: number): void {
    if (this.phase !== "open") return;
    // security (byte-budget.ts): a peer that does not read is dropped; while the router is
    // the one not reading (slow clients), the peer's silence is not its fault.
    const stalled = this.meter.stalled(now, this.ctx.limits.heartbeatTimeoutMs);
    if (stalled) {
      this.fail(stalled);
      // A status would wait behind the unread data, keeping the stream and its queued bytes
      // until the connection closes: reset the stream (RST_STREAM CANCEL) instead.
      this.duplex.reset?.();
      return;
    }
    if (this.meter.paused) this.lastReceived = now;
    const silent = this.heartbeat(now, this.ctx.limits.heartbeatIntervalMs, this.ctx.limits.heartbeatTimeoutMs);
    if (silent !== undefined) {
      this.fail(`no frame for ${silent} ms (heartbeat timeout)`);
      // A silent peer is most likely gone with its connection: close that too when no other
      // stream uses it, rather than leave it to TCP or the 2 h keepalive.
      this.duplex.abandon?.();
    }
  }

  drain(reason: string, graceMs: number): void {
    if (this.phase !== "open") return;
    this.sender.control(0, RouterFrame.Drain, DrainSchema, create(DrainSchema, { reason, grace: durationFromMs(graceMs) }));
  }

  /**
   * The router wants no new calls on this stream (its service changed under it): Drain tells
   * the instance to register anew; calls in flight finish, then the stream ends.
   */
  retire(reason: string, graceMs: number): void {
    if (this.phase !== "open" || this.draining) return;
    this.drain(reason, graceMs);
    this.endWhenIdle(); // draining from here (idle() ends the stream in a later turn)
    this.route.streamChanged(this);
  }

  /** Ends the stream from the router's side with an OK status. */
  end(): void {
    if (this.closed) return;
    this.sender.flush();
    this.close("router closed the stream", true);
  }

  // ---- incoming (the decode loop is the endpoint's) ----

  override receive(message: Uint8Array): void {
    // Any message is a heartbeat for the instance's health (pings, responses, credits).
    if (!this.closed) this.instance?.pooled.heartbeat();
    super.receive(message);
  }

  protected bytesReceived(): number | undefined {
    return this.duplex.bytesReceived;
  }

  protected override afterRead(): void {
    this.meter.afterRead(); // security: stop reading while over a byte bound
  }

  protected onHandshakeFrame(f: Frame): void {
    if (this.hello !== undefined) return; // authorizing: nothing is expected before Welcome
    if (f.call !== 0 || f.field !== InstanceFrame.Hello) throw new FrameError(`expected Hello as the first frame, got field ${f.field} of call ${f.call}`);
    this.onHello(decodeControl(HelloSchema, f.body));
  }

  protected onStreamFrame(f: Frame): void {
    switch (f.field) {
      case InstanceFrame.Drain:
        decodeControl(DrainSchema, f.body);
        this.endWhenIdle(); // draining from here (idle() ends the stream in a later turn)
        this.ctx.log(`${this.label} is draining`);
        this.route.streamChanged(this);
        return;
      case InstanceFrame.Health: {
        const h = decodeControl(HealthReportSchema, f.body);
        if (this.instance) this.route.report(this.instance, h.status !== HealthReport_Status.NOT_SERVING);
        return;
      }
      case InstanceFrame.Hello:
        throw new FrameError("a second Hello");
      default:
        return; // a control frame from a newer protocol revision
    }
  }

  protected onCallControl(call: RoutedCall, f: Frame): void {
    switch (f.field) {
      case InstanceFrame.Headers:
        return call.onHeaders(decodeControl(HeadersSchema, f.body).metadata);
      case InstanceFrame.Trailers:
        return call.onTrailers(decodeControl(TrailersSchema, f.body));
      default:
        return; // a newer control frame
    }
  }

  protected onPayload(call: RoutedCall, f: Frame): void {
    if (f.field !== call.method.field) throw this.wrongField(f, call.method.field, call.method.path);
    if (call.responseCredit <= 0) throw new FrameError(`call ${f.call} overran its window (${-call.responseCredit} bytes beyond it)`);
    // security: an oversized response fails its call, not the stream (message-limits.ts).
    const tooBig = oversized("response", f.body.length, this.ctx.limits.maxMessageBytes);
    if (tooBig) return call.failAndCancel(grpc.status.RESOURCE_EXHAUSTED, `grpcrouter: ${tooBig}`);
    call.onPayload(f.body);
  }

  private onHello(hello: Hello): void {
    this.hello = hello;
    this.instanceId = hello.instanceId;
    this.session = hello.session;
    if (this.helloTimer !== undefined) this.ctx.clock.clearTimeout(this.helloTimer);
    this.helloTimer = undefined;
    // security: Hellos per second (registration-limits.ts); the bridge retries with backoff.
    if (!this.ctx.registrations.takeHello()) {
      // A backoff hint (registration-limits.ts): come back when the router can take you.
      const pushback = this.ctx.registrations.pushbackMs();
      return this.turnAway(`too many registrations per second (come back in ${pushback} ms)`, grpc.status.RESOURCE_EXHAUSTED, pushback);
    }
    const refusal = this.checkHello(hello);
    if (refusal) return this.refuse(refusal);
    if (this.ctx.closing) return this.turnAway("the router is shutting down");
    this.requestWindow = hello.initialWindow || DEFAULT_WINDOW;
    const certificate = this.duplex.peerCertificate();
    const info: HelloInfo = {
      instanceId: hello.instanceId,
      service: hello.service,
      labels: hello.labels,
      credentials: hello.credentials,
      peer: this.peer,
      ...(certificate ? { certificate } : {}),
    };
    this.principal = principalOf(info); // security: who owns the id (instance-identity.ts)
    const authorize = this.ctx.authorize;
    if (!authorize) return this.accept();
    Promise.resolve()
      .then(() => authorize(info))
      .then(
        (reason) => {
          if (this.closed) return;
          if (reason) this.refuse(`not authorized: ${reason}`);
          else this.accept();
        },
        (e: unknown) => {
          // A hook that throws (an identity service down, …) says nothing about the instance.
          if (!this.closed) this.turnAway(`authorization failed: ${(e as Error)?.message ?? e}`);
        },
      );
  }

  private checkHello(h: Hello): string | undefined {
    if (h.protocolVersion !== ProtocolVersion.PROTOCOL_VERSION_1) {
      return `protocol version ${h.protocolVersion} is not supported; this router speaks version ${ProtocolVersion.PROTOCOL_VERSION_1}`;
    }
    if (h.service !== this.route.serviceName) {
      return `this Register stream is for ${this.route.serviceName}, but the instance says it serves ${JSON.stringify(h.service)}`;
    }
    if (h.instanceId === "") return "instance_id is empty";
    return undefined;
  }

  private accept(): void {
    // security: an id belongs to the principal that registered it first (instance-identity.ts).
    const hello = this.hello!;
    this.hello = undefined; // read for the last time here (see the field)
    const taken = this.ctx.claims.claim(this.route.serviceName, hello.instanceId, this.principal, this);
    if (taken) return this.refuse(taken, grpc.status.PERMISSION_DENIED);
    this.phase = "open";
    this.sender.send(0, RouterFrame.Welcome, acceptedWelcome(this.ctx)); // the same bytes for every instance (welcome.ts)
    this.route.addStream(this, hello);
    this.ctx.audit("registered", this.auditFields()); // security: audit trail
    // A reconnect after a network change or a sleep: the stream it replaces may still look
    // alive here. Same id and principal (claimed above), so it is dropped at once (after
    // this one joined, so the instance never leaves the pool), never left to hold the id or
    // take calls into a dead connection; its calls fail over as on any lost stream.
    if (hello.replacesSession !== "") this.route.replaceStale(this, hello.replacesSession);
  }

  /** What the audit trail records of this stream. */
  private auditFields(reason?: string) {
    return {
      service: this.route.serviceName,
      instanceId: this.instanceId,
      principal: this.principal,
      peer: this.peer,
      ...(reason ? { reason } : {}),
    };
  }

  /**
   * A refusal is final: Welcome{accepted: false} tells the instance that retrying cannot
   * help (wrong service, protocol, token, certificate), and the bridge stops. A reason that
   * may pass (shutting down, a failing authorize hook) only ends the stream UNAVAILABLE, so
   * the bridge reconnects with its backoff: see turnAway.
   */
  private refuse(reason: string, code: grpc.status = grpc.status.FAILED_PRECONDITION): void {
    this.ctx.log(`refused ${this.label}: ${reason}`);
    this.ctx.audit("refused", this.auditFields(reason));
    this.sender.control(
      0,
      RouterFrame.Welcome,
      WelcomeSchema,
      create(WelcomeSchema, { accepted: false, reason, protocolVersion: ProtocolVersion.PROTOCOL_VERSION_1, routerId: this.ctx.routerId }),
    );
    this.sender.flush();
    this.close(reason, false, code);
  }

  /** Not now, maybe later: ends the stream UNAVAILABLE without a Welcome, the bridge retries. */
  private turnAway(reason: string, code: grpc.status = grpc.status.UNAVAILABLE, pushbackMs?: number): void {
    this.ctx.log(`turned away ${this.label}: ${reason} (it will retry)`);
    this.ctx.audit("turnedAway", this.auditFields(reason));
    let trailers: grpc.Metadata | undefined;
    if (pushbackMs !== undefined) {
      // gRPC's retry pushback header: how long the bridge waits before it tries again.
      trailers = new grpc.Metadata();
      trailers.set(PUSHBACK_KEY, String(pushbackMs));
    }
    this.close(reason, false, code, trailers);
  }

  /** Its instance reconnected on a new stream that names this one as lost (Hello.replaces_session). */
  replaced(): void {
    if (this.phase !== "open") return;
    this.ctx.log(`replacing ${this.label}: the instance reconnected on a new Register stream`);
    this.close("replaced by the instance's new Register stream (it reconnected)");
    this.duplex.abandon?.(); // its connection is the stale one, unless other streams still use it
  }

  /** A protocol violation: log it and close this stream only. */
  fail(reason: string): void {
    if (this.closed) return;
    this.ctx.log(`closing ${this.label}: ${reason}`);
    this.close(reason, false, grpc.status.INVALID_ARGUMENT);
  }

  /**
   * The stream ended with bytes the peer had not taken yet: a peer that reads gets them and
   * the status within the grace an abandoned connection gets; otherwise the stream is reset.
   */
  private resetUnlessTaken(): void {
    this.ctx.clock.setTimeout(() => {
      if (this.meter.queued > 0) this.duplex.reset?.();
    }, ABANDON_GRACE_MS);
  }

  private close(reason: string, graceful = false, code: grpc.status = grpc.status.UNAVAILABLE, trailers?: grpc.Metadata): void {
    const wasOpen = this.phase === "open";
    if (!this.markClosed(false)) return;
    this.hello = undefined;
    if (this.helloTimer !== undefined) this.ctx.clock.clearTimeout(this.helloTimer);
    this.helloTimer = undefined;
    this.ctx.claims.release(this); // security: the id is free once no stream holds it
    // security (byte-budget.ts): closing takes this stream's queued bytes out of the
    // router-wide budget, so they must not outlive it. A status would wait behind them for as
    // long as the peer does not read (forever, for a hostile one): bytes nothing counts.
    const unsent = this.meter.queued > 0;
    this.meter.close();
    try {
      if (graceful || code === grpc.status.OK) this.duplex.end(grpc.status.OK, "");
      else this.duplex.end(code, `grpcrouter: ${reason}`, trailers);
      if (unsent) this.resetUnlessTaken();
    } catch {
      // already gone
    }
    if (wasOpen) {
      this.route.removeStream(this, reason);
      this.ctx.audit("deregistered", this.auditFields(reason));
    }
    this.owner.streamClosed(this);
    for (const c of this.takeCalls()) c.onStreamLost(reason);
  }
}
