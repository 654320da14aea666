// The bridge's end of one Register stream (a TunnelEndpoint: protocol/tunnel-endpoint.ts has
// what both ends share): it opens the stream through its router's RegisterOpener (HTTP/2 or
// WebSocket, it does not know which), says Hello, waits for Welcome, runs a BridgeCall for
// every Open, keeps the stream alive, and drains or closes it. raw-bridge.ts keeps a pool of
// these per router and replaces each one that is lost.
import { hostname } from "node:os";
import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { durationMs } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import {
  CancelSchema,
  DrainSchema,
  HealthReportSchema,
  HealthReport_Status,
  HelloSchema,
  OpenSchema,
  ProtocolVersion,
  WelcomeSchema,
  type Welcome,
} from "../../gen/grpcrouter/v1/tunnel_pb.js";
import type { Clock, TimerHandle } from "../../resilience/clock.js";
import { BridgeCall, CallError, type CallHost, type RawHandler, type RawStatus } from "./bridge-call.js";
import type { Drained } from "../drained.js";
import { InstanceFrame, RouterFrame, decodeControl, type Frame } from "../frames.js";
import { DEFAULT_WINDOW, TunnelEndpoint, type EndpointSide } from "../protocol/tunnel-endpoint.js";
import type { BridgeOptions } from "./raw-bridge.js";
import { PUSHBACK_KEY } from "../registration-limits.js";
import { REFUSED_KEY } from "../router/router-call.js";
import type { TunnelTable } from "../spec.js";
import { FrameError } from "../wire.js";
import type { RegisterOpener, RegisterStream } from "./register-transport.js";

/** What a connection needs of its bridge. */
export interface ConnectionBridge {
  readonly options: BridgeOptions;
  readonly table: TunnelTable;
  readonly handler: RawHandler;
  readonly instanceId: string;
  readonly callWindow: number;
  readonly maxMessageBytes: number;
  /** The time keepalive is measured in. */
  readonly clock: Clock;
  /** Calls running over all streams; a connection counts its own in and out. */
  active: number;
  readonly stopping: boolean;
  readonly serving: boolean;
  /** Told whenever a call ends or a stream closes. */
  readonly drained: Drained;
  log(line: string): void;
  /** A router refused the instance (or the bridge cannot speak its protocol): final. */
  refused(address: string, reason: string, byBridge?: boolean): void;
  /** A router named in a Welcome: register with it too. */
  addRouter(address: string): void;
}

/** What a connection needs of its place in the pool (raw-bridge.ts's Slot). */
export interface ConnectionSlot {
  readonly bridge: ConnectionBridge;
  /** The router's address, as the bridge dialled it. */
  readonly address: string;
  readonly transport: RegisterOpener;
  /** This stream's place among the router's `count` (Hello.stream_index / stream_count). */
  readonly index: number;
  readonly count: number;
  /** Hello.replaces_session: the session of the stream this one replaces, if lost without a goodbye. */
  readonly lostSession: string;
  welcomed(): void;
  /** A retiring connection wants a successor now. */
  replace(conn: RegisterConnection): void;
  /** The connection is over (reconnect, unless it was retired or replaced). */
  lost(conn: RegisterConnection, reason: string): void;
}

/** The bridge's end: it sends InstanceFrames and reads RouterFrames. */
const BRIDGE_SIDE: EndpointSide = { sends: InstanceFrame, reads: RouterFrame, malformed: "malformed message from the router" };

/**
 * The bridge's end of one Register stream (protocol/tunnel-endpoint.ts has what both ends
 * share). Its handshake is Welcome; its calls are BridgeCalls, opened by the router's Open.
 */
export class RegisterConnection extends TunnelEndpoint<BridgeCall> implements CallHost {
  readonly requestWindow: number;
  readonly maxMessageBytes: number;
  /** The stream under this end, once it is open (HTTP/2 or WebSocket: it does not matter here). */
  private stream: RegisterStream | undefined;
  /** HTTP/2 could not be established for this stream; its successor goes over WebSocket. */
  fellBack = false;
  /** Welcome came (a second one is a protocol violation). */
  private isWelcomed = false;
  /** We sent Drain (or were refused): Opens are refused, the router ends the stream. */
  private draining = false;
  private keepalive: TimerHandle | undefined;
  private responseWindow = DEFAULT_WINDOW;
  /** The router's grpc-retry-pushback-ms when it turned this stream away. */
  pushbackMs: number | undefined;
  /** Hello.session: who this stream is, should its successor have to replace it. */
  readonly sessionId = randomUUID();

  constructor(private readonly slot: ConnectionSlot) {
    super(slot.bridge.clock, BRIDGE_SIDE);
    this.requestWindow = slot.bridge.callWindow;
    this.maxMessageBytes = slot.bridge.maxMessageBytes;
  }

  protected write(message: Buffer): void {
    try {
      this.stream?.write(message);
    } catch (e) {
      this.close(`write failed: ${(e as Error).message}`);
    }
  }

  private get bridge(): ConnectionBridge {
    return this.slot.bridge;
  }

  async start(): Promise<void> {
    const b = this.bridge;
    const o = b.options;
    let credentials: Record<string, string> = {};
    try {
      if (o.credentialsHook) credentials = await o.credentialsHook();
    } catch (e) {
      this.close(`credentials hook failed: ${(e as Error).message}`);
      return;
    }
    if (this.closed) return;
    const stream = await this.slot.transport.open(
      b.table.registerPath,
      { onMessage: (m) => this.receive(m), onEnd: (reason, trailers, retryNow) => this.onEnd(reason, trailers, retryNow) },
      () => this.closed,
    );
    if (!stream) return;
    if (this.closed) return stream.cancel(); // it ended while it opened
    this.stream = stream;
    this.sendHello(credentials);
  }

  /** The stream ended without this side ending it. */
  private onEnd(reason: string, trailers: grpc.Metadata | undefined, retryNow: boolean): void {
    // HTTP/2 was refused on the way: the successor goes over WebSocket at once (transport.ts).
    if (retryNow) this.fellBack = true;
    // The router's backoff hint (grpc-retry-pushback-ms) when it turned this stream away.
    const pushback = Number(trailers?.get(PUSHBACK_KEY)[0]);
    if (Number.isInteger(pushback) && pushback >= 0) this.pushbackMs = pushback;
    this.close(reason);
  }

  private sendHello(credentials: Record<string, string>): void {
    const b = this.bridge;
    const o = b.options;
    this.sender.control(
      0,
      InstanceFrame.Hello,
      HelloSchema,
      create(HelloSchema, {
        protocolVersion: ProtocolVersion.PROTOCOL_VERSION_1,
        instanceId: b.instanceId,
        service: b.table.spec.service.typeName,
        labels: o.labels ?? {},
        weight: o.weight ?? 0,
        maxConcurrentCalls: o.maxConcurrentCalls ?? 0,
        credentials,
        initialWindow: this.requestWindow,
        streamIndex: this.slot.index,
        streamCount: this.slot.count,
        description: o.description ?? `${hostname()} pid ${process.pid}`,
        session: this.sessionId,
        replacesSession: this.slot.lostSession,
      }),
    );
  }

  /**
   * Replaced by a connection with a newer Hello: Drain. The router sends no new call after
   * it reads the Drain (Opens crossing it are refused unstarted and move on) and ends the
   * stream once its calls are done, so no call is caught between the two streams.
   */
  retireAfterRenewal(): void {
    this.drain();
  }

  get registered(): boolean {
    return this.phase === "open";
  }

  /** Whether the stream runs on `connection` (one the router sent GOAWAY on). */
  runsOn(connection: object): boolean {
    return this.stream?.runsOn(connection) ?? false;
  }

  /** The router welcomed this stream at some point. */
  get welcomed(): boolean {
    return this.isWelcomed;
  }

  /** Sends the bridge's health (after Welcome; a stream not yet welcomed reports on Welcome). */
  reportHealth(): void {
    if (this.closed || !this.isWelcomed) return;
    const status = this.bridge.serving ? HealthReport_Status.SERVING : HealthReport_Status.NOT_SERVING;
    this.sender.control(0, InstanceFrame.Health, HealthReportSchema, create(HealthReportSchema, { status }));
  }

  drain(): void {
    if (this.closed || this.draining) return;
    this.draining = true;
    this.sender.control(0, InstanceFrame.Drain, DrainSchema, create(DrainSchema, { reason: "instance stopping" }));
  }

  // ---- CallHost ----

  ended(call: BridgeCall): void {
    if (this.calls.get(call.id) !== call) return;
    this.bridge.active--;
    this.removeCall(call.id, call); // the last call of a retiring stream closes it (idle)
    this.bridge.drained.changed();
  }

  /**
   * The router is draining this stream (shutting down, or replaced by a reloaded router on
   * the same address): a new stream registers at once, this one ends when its calls have.
   */
  private retire(): void {
    if (this.endingWhenIdle || this.closed) return;
    // The new stream goes on a new connection: on this one it would reach the draining
    // router again (to be turned away), not one that takes over (behind a load balancer).
    this.stream?.leave();
    this.slot.replace(this);
    this.endWhenIdle();
  }

  protected idle(): void {
    this.close("drained", true);
  }

  // ---- incoming (the decode loop is the endpoint's) ----

  protected onHandshakeFrame(f: Frame): void {
    if (f.call !== 0) throw new FrameError(`frame for call ${f.call} before Welcome`);
    this.onControlFrame(f);
  }

  protected onStreamFrame(f: Frame): void {
    switch (f.field) {
      case RouterFrame.Welcome:
        if (this.isWelcomed) throw new FrameError("a second Welcome");
        return this.onWelcome(decodeControl(WelcomeSchema, f.body));
      case RouterFrame.Drain: {
        const d = decodeControl(DrainSchema, f.body);
        this.bridge.log(`router ${this.slot.address} is draining (${d.reason}); registering anew`);
        this.retire();
        return;
      }
      default:
        return; // a control frame from a newer protocol revision
    }
  }

  protected override onFrameWithoutCall(f: Frame): void {
    if (f.field === RouterFrame.Open) return this.onOpen(f.call, f.body);
    super.onFrameWithoutCall(f); // ended here (the router's frames cross our Trailers), or never opened
  }

  protected onCallControl(call: BridgeCall, f: Frame): void {
    switch (f.field) {
      case RouterFrame.HalfClose:
        return call.onHalfClose();
      case RouterFrame.Cancel: {
        const c = decodeControl(CancelSchema, f.body);
        return call.drop(c.reason || "cancelled", c.deadlineExceeded);
      }
      case RouterFrame.Open:
        throw new FrameError(`call id ${f.call} reused`);
      default:
        return; // a newer control frame
    }
  }

  protected onPayload(call: BridgeCall, f: Frame): void {
    if (f.field !== call.tunnelMethod.field) throw this.wrongField(f, call.tunnelMethod.field, call.method);
    call.onPayload(f.body);
  }

  private onWelcome(w: Welcome): void {
    if (!w.accepted) {
      const reason = w.reason || "no reason given";
      // No Drain on a stream the router is closing; the bridge stops without reconnecting.
      this.draining = true;
      this.bridge.refused(this.slot.address, reason);
      this.close(`refused: ${reason}`);
      return;
    }
    if (w.protocolVersion !== ProtocolVersion.PROTOCOL_VERSION_1) {
      // The router welcomed us in a protocol we do not speak (a newer or older release):
      // frames would be misread, so this bridge refuses it, as a router refuses a Hello of a
      // version it does not speak: final, naming both versions, so the operator upgrades one.
      const reason = `the router speaks tunnel protocol version ${w.protocolVersion}, this bridge speaks version ${ProtocolVersion.PROTOCOL_VERSION_1}; upgrade the older of the two`;
      this.draining = true;
      this.bridge.refused(this.slot.address, reason, true);
      this.close(reason);
      return;
    }
    this.isWelcomed = true;
    this.phase = "open";
    this.stream?.welcomed();
    this.responseWindow = w.initialWindow || DEFAULT_WINDOW;
    const asked = w.heartbeatInterval ? durationMs(w.heartbeatInterval) : 10_000;
    const interval = Math.max(10, this.bridge.options.keepaliveMs ?? asked);
    this.scheduleTick(interval);
    this.slot.welcomed();
    if (!this.bridge.serving) this.reportHealth();
    // Scale-out: register with the other routers of the deployment too.
    for (const address of w.routerAddresses) this.bridge.addRouter(address);
  }

  /**
   * Keepalive: ping when idle either way for an interval; silent for two, the router is gone.
   * Ticks a quarter interval apart, on the bridge's clock: a dead router is found within about
   * two intervals.
   */
  private scheduleTick(interval: number): void {
    this.keepalive = this.clock.setTimeout(
      () => {
        this.keepalive = undefined;
        if (this.closed) return;
        this.tick(interval);
        if (!this.closed) this.scheduleTick(interval);
      },
      Math.max(5, interval / 4),
    );
  }

  protected bytesReceived(): number | undefined {
    return this.stream?.bytesReceived;
  }

  private tick(interval: number): void {
    const silent = this.heartbeat(this.clock.now(), interval, 2 * interval);
    if (silent === undefined) return;
    const why = `no frame from the router for ${silent} ms (keepalive ${interval} ms)`;
    // The connection under it is dead too (its other streams would say the same soon): a
    // new one, not another stream on it, is what the reconnect needs.
    this.stream?.discard(why);
    this.close(why);
  }

  private onOpen(id: number, body: Uint8Array): void {
    if (id <= this.maxCallId) throw new FrameError(`call id ${id} reused`);
    const open = decodeControl(OpenSchema, body);
    const b = this.bridge;
    const method = b.table.byPath.get(open.method);
    const deadline = open.timeout ? Date.now() + durationMs(open.timeout) : Infinity;
    const call = new BridgeCall(this, id, method ?? unknownMethod(open.method), open.metadata, deadline, open.peer, this.responseWindow);
    this.addCall(id, call);
    b.active++;
    if (!method) {
      call.finish({ code: grpc.status.UNIMPLEMENTED, details: `method ${open.method} is not served by this instance` });
      return;
    }
    const max = b.options.maxConcurrentCalls ?? 0;
    if (this.draining || b.stopping || (max > 0 && b.active > max)) {
      const refused = new grpc.Metadata();
      refused.set(REFUSED_KEY, this.draining || b.stopping ? "draining" : "busy");
      call.finish({ code: grpc.status.UNAVAILABLE, details: "grpcrouter: the instance is not taking calls", metadata: refused });
      return;
    }
    // On a later turn: after the frames read with the Open (its requests, often), and a
    // handler that throws at once fails its call, not the stream.
    queueMicrotask(() => runHandler(b, call));
  }

  /** A protocol violation by the router: this stream closes (and reconnects) with the reason. */
  fail(reason: string): void {
    this.close(reason);
  }

  /** Ends the stream; in-flight calls are aborted (the router fails them for the client). */
  close(reason: string, graceful = false): void {
    if (!this.markClosed(graceful)) return;
    if (this.keepalive !== undefined) this.clock.clearTimeout(this.keepalive);
    const calls = this.takeCalls();
    this.bridge.active -= calls.length;
    for (const c of calls) c.drop(`Register stream closed: ${reason}`, false);
    if (graceful) this.stream?.end();
    else this.stream?.cancel();
    this.slot.lost(this, reason);
    this.bridge.drained.changed();
  }
}

function unknownMethod(path: string): BridgeCall["tunnelMethod"] {
  // Frames of an unknown method are never accepted: field 0 matches no payload.
  return { path, field: 0, kind: "unary", singleRequest: true, singleResponse: true } as unknown as BridgeCall["tunnelMethod"];
}

/** Runs the bridge's handler for `call` and ends the call with the status it gives, or with its error's. */
function runHandler(b: ConnectionBridge, call: BridgeCall): void {
  let result: Promise<RawStatus>;
  try {
    result = b.handler(call);
  } catch (e) {
    call.finish(statusOfError(e));
    return;
  }
  // Promise.resolve: a handler in plain JavaScript may return the status itself.
  Promise.resolve(result).then(
    (status: RawStatus) => call.finish(status),
    (e: unknown) => call.finish(statusOfError(e)),
  );
}

export function statusOfError(e: unknown): RawStatus {
  if (e instanceof CallError) return { code: e.code, details: e.message, ...(e.metadata ? { metadata: e.metadata } : {}) };
  const err = e as { code?: unknown; details?: unknown; message?: unknown; metadata?: unknown };
  if (typeof err?.code === "number" && Number.isInteger(err.code) && err.code > 0 && err.code <= 16) {
    return {
      code: err.code,
      details: typeof err.details === "string" ? err.details : String(err.message ?? ""),
      ...(err.metadata instanceof grpc.Metadata ? { metadata: err.metadata } : {}),
    };
  }
  return { code: grpc.status.UNKNOWN, details: e instanceof Error ? e.message : String(e) };
}
