// One end of a Register stream, as both ends have it: the router's InstanceStream
// (router-stream.ts) and the bridge's RegisterConnection (bridge/register-connection.ts) are
// its subclasses. Shared here: the FrameSender, the call table and its ids, the heartbeat
// (Ping/Pong, last frame in and out, bytes of a message still arriving, the silence that
// counts as a dead peer), the decode loop (a bad message or frame closes this stream only,
// with a reason), flow-control credits, and the bones of closing (drain until idle, close
// once, hand back the calls). Each end supplies what differs: its handshake (Hello vs
// Welcome), the control frames it accepts, what a call is and does, its transport's bytes.
//
// The data path runs through `receive` → `onFrame` → the call's handler; nothing here
// allocates per frame, and each hook has exactly two implementations (one per end).
import { create } from "@bufbuild/protobuf";
import { PingSchema, PongSchema, WindowUpdateSchema } from "../../gen/grpcrouter/v1/tunnel_pb.js";
import type { Clock } from "../../resilience/clock.js";
import { FIRST_METHOD_FIELD, decodeControl, decodeFrames, type Frame } from "../frames.js";
import { FrameSender } from "../sender.js";
import { FrameError } from "../wire.js";

/** Field numbers of the control frames both directions have. */
export interface SharedFrames {
  readonly Ping: number;
  readonly Pong: number;
  readonly WindowUpdate: number;
}

/** Which end an endpoint is: the field numbers it sends and reads, and how it names a bad message. */
export interface EndpointSide {
  readonly sends: SharedFrames;
  readonly reads: SharedFrames;
  /** Starts the reason a malformed message closes the stream with. */
  readonly malformed: string;
}

/** What the endpoint itself does with a call in its table. */
export interface EndpointCall {
  /** The peer granted `bytes` more of this call's messages (at most MAX_CREDIT at once). */
  onWindowUpdate(bytes: number): void;
}

/** The protocol's per-call window: what Hello.initial_window and Welcome.initial_window of 0 mean. */
export const DEFAULT_WINDOW = 65536;

/** Credits beyond this are a peer bug or an attack (they would overflow a uint32 window). */
export const MAX_CREDIT = 2 ** 31;

export type EndpointPhase = "handshake" | "open" | "closed";

/**
 * The call table of every endpoint that has not had a call yet: one empty Map shared, never
 * written (`addCall` gives an endpoint its own). A router holds thousands of idle Register
 * streams, each of whose own empty Map was ≈ 180 bytes. Still a Map, so lookups on the
 * per-frame path see one shape.
 */
const NO_CALLS: ReadonlyMap<number, never> = new Map<number, never>();

export abstract class TunnelEndpoint<C extends EndpointCall> {
  readonly sender: FrameSender;
  /** Calls on this stream by id (read it; `addCall`/`removeCall`/`takeCalls` change it). */
  calls: ReadonlyMap<number, C> = NO_CALLS;
  /** The endpoint's own table, made with its first call. */
  private table: Map<number, C> | undefined;
  /** The highest call id opened on this stream: a frame for a higher one was never opened. */
  protected maxCallId = 0;
  /** Until the handshake is done only `onHandshakeFrame` sees frames; once closed, nothing does. */
  phase: EndpointPhase = "handshake";
  /** Incremented on every flush; a frame queued before a flush has left. */
  flushSeq = 0;
  /** Clock times of the last message in and out. */
  lastReceived: number;
  lastSent: number;
  /** Clock time of our last Ping. */
  private lastPing: number;
  /** The transport's bytesReceived when `lastReceived` was last set (see `bytesReceived`). */
  private bytesSeen = 0;
  private pingNonce = 0n;
  /** This end ends the stream once its last call has (it or its peer drained it). */
  private endsWhenIdle = false;
  /** The peer's WindowUpdate field, kept here: it is looked at for every frame of a call. */
  private readonly windowUpdate: number;

  constructor(
    /** The time heartbeats are measured in (the router's clock on the router). */
    protected readonly clock: Clock,
    private readonly side: EndpointSide,
  ) {
    this.lastReceived = this.lastSent = this.lastPing = clock.now();
    this.windowUpdate = side.reads.WindowUpdate;
    this.sender = new FrameSender((message) => {
      this.flushSeq++;
      this.lastSent = this.clock.now();
      this.write(message);
    });
  }

  get closed(): boolean {
    return this.phase === "closed";
  }

  // ---- what each end supplies ----

  /** Puts one Register message on the wire; a failure closes the stream. */
  protected abstract write(message: Buffer): void;
  /** A frame before the handshake is done (Hello on the router, Welcome on the bridge). */
  protected abstract onHandshakeFrame(f: Frame): void;
  /** A control frame of the stream itself (call 0) other than Ping and Pong. */
  protected abstract onStreamFrame(f: Frame): void;
  /** A control frame of a call other than WindowUpdate; unknown ones are a newer revision's. */
  protected abstract onCallControl(call: C, f: Frame): void;
  /** A payload frame (field ≥ FIRST_METHOD_FIELD) of a call; one not of its method is `wrongField`. */
  protected abstract onPayload(call: C, f: Frame): void;
  /** A protocol violation: close this stream only, saying why. */
  abstract fail(reason: string): void;
  /** The stream has no call left and `endWhenIdle` was asked for. */
  protected abstract idle(): void;
  /**
   * Bytes the transport has taken from the peer so far, whole messages or not (undefined: it
   * does not count them). The heartbeat counts bytes of a message still arriving as life: a
   * big batch on a slow link is not silence because it takes longer than the timeout to come whole.
   */
  protected abstract bytesReceived(): number | undefined;
  /** A whole message was handled (the router's byte budget looks at its queues here). */
  protected afterRead(): void {}

  // ---- incoming ----

  /** One Register message from the peer. Anything malformed or hostile closes this stream only. */
  receive(message: Uint8Array): void {
    if (this.phase === "closed") return;
    this.lastReceived = this.clock.now();
    this.bytesSeen = this.bytesReceived() ?? 0; // counted as life (lastReceived) here
    let frames: Frame[];
    try {
      frames = decodeFrames(message);
    } catch (e) {
      this.fail(`${this.side.malformed}: ${(e as Error).message}`);
      return;
    }
    for (let i = 0; i < frames.length; i++) {
      try {
        this.onFrame(frames[i]!);
      } catch (e) {
        // Our own bugs must not take the process down either; the stream pays.
        this.fail(e instanceof FrameError ? e.message : `frame handling failed: ${(e as Error).stack ?? e}`);
      }
      if (this.closed) return;
    }
    this.afterRead();
  }

  private onFrame(f: Frame): void {
    if (this.phase !== "open") return this.onHandshakeFrame(f);
    if (f.call === 0) return this.onControlFrame(f);
    const call = this.calls.get(f.call);
    if (call === undefined) return this.onFrameWithoutCall(f);
    if (f.field >= FIRST_METHOD_FIELD) return this.onPayload(call, f);
    if (f.field === this.windowUpdate) return call.onWindowUpdate(this.creditOf(f));
    this.onCallControl(call, f);
  }

  /** A frame of call 0: heartbeats here, the rest to the end's own handler. */
  protected onControlFrame(f: Frame): void {
    const reads = this.side.reads;
    if (f.field === reads.Ping) {
      const nonce = decodeControl(PingSchema, f.body).nonce;
      this.sender.control(0, this.side.sends.Pong, PongSchema, create(PongSchema, { nonce }));
      return;
    }
    if (f.field === reads.Pong) return;
    if (f.field >= FIRST_METHOD_FIELD) throw new FrameError(`payload field ${f.field} on call 0`);
    this.onStreamFrame(f);
  }

  /** A frame for a call not in the table: late (it ended here; frames cross), or never opened. */
  protected onFrameWithoutCall(f: Frame): void {
    if (f.call > this.maxCallId) throw new FrameError(`frame for call ${f.call}, which was never opened`);
  }

  /** A WindowUpdate's bytes, refused beyond MAX_CREDIT. */
  private creditOf(f: Frame): number {
    const bytes = decodeControl(WindowUpdateSchema, f.body).bytes;
    if (bytes > MAX_CREDIT) throw new FrameError(`window update of ${bytes} bytes on call ${f.call}`);
    return bytes;
  }

  /** A payload frame that does not carry its call's method field (checked by the caller, inline). */
  protected wrongField(f: Frame, field: number, method: string): FrameError {
    return new FrameError(`call ${f.call} is ${method} (field ${field}) but got payload field ${f.field}`);
  }

  // ---- calls ----

  protected addCall(id: number, call: C): void {
    if (this.table === undefined) this.calls = this.table = new Map();
    this.table.set(id, call);
    if (id > this.maxCallId) this.maxCallId = id;
  }

  /** Takes `call` out of the table (false when it is not there); the last one out of a draining stream ends it. */
  protected removeCall(id: number, call: C): boolean {
    if (this.calls.get(id) !== call) return false;
    this.table!.delete(id);
    if (this.endsWhenIdle && this.calls.size === 0) this.idle();
    return true;
  }

  // ---- heartbeat ----

  /**
   * Keepalive, called every quarter interval or so: pings when nothing went either way for an
   * interval (so a peer that only listens is asked too). Returns how long the peer has been
   * silent when that is longer than `timeoutMs` (it missed a Ping's answer: dead), else undefined.
   * Bytes that came since the last message or tick (a message still arriving) are not silence.
   */
  protected heartbeat(now: number, intervalMs: number, timeoutMs: number): number | undefined {
    const got = this.bytesReceived();
    if (got !== undefined && got !== this.bytesSeen) {
      this.bytesSeen = got;
      this.lastReceived = now;
    }
    const silent = now - this.lastReceived;
    if (silent > timeoutMs) return silent;
    if ((now - this.lastSent >= intervalMs || silent >= intervalMs) && now - this.lastPing >= intervalMs) {
      this.lastPing = now;
      this.sender.control(0, this.side.sends.Ping, PingSchema, create(PingSchema, { nonce: ++this.pingNonce }));
    }
    return undefined;
  }

  // ---- closing ----

  /** This end ends the stream once no call is left on it (now, if none is). */
  protected endWhenIdle(): void {
    this.endsWhenIdle = true;
    if (this.calls.size === 0) this.idle();
  }

  /** Whether `endWhenIdle` was asked for. */
  protected get endingWhenIdle(): boolean {
    return this.endsWhenIdle;
  }

  /**
   * Closes the endpoint: false when it already was. Queued frames leave first when `flush`,
   * then the sender stops; the caller ends the transport and tells the calls (`takeCalls`).
   */
  protected markClosed(flush: boolean): boolean {
    if (this.phase === "closed") return false;
    this.phase = "closed";
    if (flush) this.sender.flush();
    this.sender.close();
    return true;
  }

  /** Empties the call table; each call returned must be told its stream is gone. */
  protected takeCalls(): C[] {
    const calls = [...this.calls.values()];
    this.table?.clear();
    return calls;
  }
}
