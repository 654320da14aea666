// Both ends of a Register stream without sockets: a ServerCall the test plays (the router's
// duplex) and an instance speaking frames on it, so frames, statuses and timings on a
// ManualClock are checked exactly.
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { HelloSchema, ProtocolVersion, WelcomeSchema } from "../../src/gen/grpcrouter/v1/tunnel_pb.js";
import { ManualClock } from "../../src/resilience/clock.js";
import { AdminHub } from "../../src/admin/index.js";
import {
  FrameEncoder,
  GrpcServer,
  InstanceFrame,
  RouterFrame,
  createRouter,
  decodeControl,
  decodeFrames,
  type CallListener,
  type Frame,
  type RouterOptions,
  type ServerCall,
} from "../../src/tunnel/index.js";
import { TestTunnel, quietLog, waitFor } from "../tunnel/helpers.js";
import type { RegisterOpener, RegisterStream, RegisterStreamListener } from "../../src/tunnel/bridge/register-transport.js";

export const UNARY = "/interop.v1.TestService/UnaryCall";
export const SERVER_STREAM = "/interop.v1.TestService/StreamingOutputCall";
export const REGISTER = "/interop.v1.TestServiceRouter/Register";
export const UNARY_FIELD = 17;
export const SERVER_STREAM_FIELD = 18;

/** A ServerCall played by the test: what was written to it, its status, and its listener to send on. */
export class FakeCall implements ServerCall {
  listener: CallListener | undefined;
  headers: grpc.Metadata | undefined;
  readonly written: Buffer[] = [];
  status: { code: number; message: string; trailers?: grpc.Metadata } | undefined;
  paused = false;
  abandoned = false;
  /** Request bytes taken, as a real call counts them; a test moves it to play a message still arriving. */
  bytesReceived = 0;
  /** When set, `flushed` callbacks wait here until the test runs them (a client that does not read). */
  held: Array<() => void> | undefined;
  /** Hears every message written and the status (a MemoryLink passes them to the bridge). */
  onWrite: ((message: Buffer) => void) | undefined;
  onEnd: ((code: number, message: string, trailers?: grpc.Metadata) => void) | undefined;
  constructor(
    readonly path: string,
    readonly metadata = new grpc.Metadata(),
    readonly deadline = Infinity,
    readonly peer = "127.0.0.1:4242",
  ) {}
  peerCertificate() {
    return undefined;
  }
  listen(l: CallListener) {
    this.listener = l;
  }
  pause() {
    this.paused = true;
  }
  resume() {
    this.paused = false;
  }
  sendHeaders(md?: grpc.Metadata) {
    this.headers ??= md ?? new grpc.Metadata();
  }
  write(m: Buffer, flushed?: () => void) {
    this.headers ??= new grpc.Metadata();
    this.written.push(Buffer.from(m));
    this.onWrite?.(Buffer.from(m));
    if (flushed) {
      if (this.held) this.held.push(flushed);
      else flushed();
    }
    return true;
  }
  drained() {
    return Promise.resolve();
  }
  end(code: number, message: string, trailers?: grpc.Metadata) {
    if (this.status) return;
    this.status = { code, message, ...(trailers ? { trailers } : {}) };
    this.onEnd?.(code, message, trailers);
  }
  abandon() {
    this.abandoned = true;
  }
  get ended() {
    return this.status !== undefined;
  }
}

/** An instance on a fake Register stream: the frames the router sent it, and frames to send back. */
export class FakeInstance {
  readonly call: FakeCall;
  private seen = 0;
  /** Every frame the router sent, in order. */
  readonly received: Frame[] = [];
  constructor(
    server: GrpcServer,
    readonly id: string,
    peer?: string,
  ) {
    this.call = new FakeCall(REGISTER, new grpc.Metadata(), Infinity, peer);
    server.lookup(REGISTER)!.handle(this.call, undefined);
    this.send((e) =>
      e.addControl(
        0,
        InstanceFrame.Hello,
        HelloSchema,
        create(HelloSchema, { protocolVersion: ProtocolVersion.PROTOCOL_VERSION_1, service: "interop.v1.TestService", instanceId: id }),
      ),
    );
  }
  send(build: (e: FrameEncoder) => void) {
    const e = new FrameEncoder();
    build(e);
    this.sendBytes(e.take());
  }
  sendBytes(message: Buffer) {
    this.call.listener!.message(message);
  }
  /** Frames the router sent since the last call (all of them stay in `received`). */
  frames(): Frame[] {
    const out = this.call.written.slice(this.seen).flatMap((m) => decodeFrames(m));
    this.seen = this.call.written.length;
    this.received.push(...out);
    return out;
  }
  /** Waits for a frame the router sends from now on that `match` accepts. */
  async next(what: string, match: (f: Frame) => boolean): Promise<Frame> {
    let found: Frame | undefined;
    await waitFor(`${this.id}: ${what}`, () => {
      found ??= this.frames().find(match);
      return found !== undefined;
    });
    return found!;
  }
  async welcomed(): Promise<void> {
    const w = await this.next("Welcome", (f) => f.call === 0 && f.field === RouterFrame.Welcome);
    if (!decodeControl(WelcomeSchema, w.body).accepted) throw new Error(`${this.id} was refused`);
  }
}

/** A router on a ManualClock, served by a GrpcServer that only the test calls into. */
export function routerOnManualClock(extra: Partial<RouterOptions> = {}) {
  const clock = new ManualClock();
  const logs: string[] = [];
  const hub = new AdminHub();
  const router = createRouter({ services: [{ tunnel: TestTunnel }], logger: quietLog(logs), hub, clock, ...extra });
  const server = new GrpcServer();
  router.addTo(server);
  return { clock, logs, router, server, hub };
}

/** A client call handled by the router. */
export function clientCall(server: GrpcServer, path: string, request?: Buffer): FakeCall {
  const c = new FakeCall(path);
  server.lookup(path)!.handle(c, request);
  return c;
}

/**
 * One Register stream between a raw bridge and a router, in memory: what one side writes the
 * other reads on a later turn (as over a socket), until `blackhole()` (a connection that died
 * without a word: nothing passes either way, nothing ends).
 */
export class MemoryLink {
  readonly routerSide: FakeCall;
  readonly bridgeSide: RegisterStream;
  private blackholed = false;
  /** The bridge ended or cancelled the stream: it hears nothing more about it. */
  private bridgeDone = false;
  discarded: string | undefined;
  /** What the bridge's side reports as bytesReceived; a test moves it to play a message still arriving. */
  bytesToBridge = 0;

  constructor(path: string, listener: RegisterStreamListener, peer: string) {
    const link = this;
    const router = new FakeCall(path, new grpc.Metadata(), Infinity, peer);
    this.routerSide = router;
    router.onWrite = (m) =>
      setImmediate(() => {
        if (!this.blackholed && !this.bridgeDone) listener.onMessage(m);
      });
    router.onEnd = (code, message, trailers) =>
      setImmediate(() => {
        if (this.blackholed || this.bridgeDone) return;
        this.bridgeDone = true;
        listener.onEnd(code === grpc.status.OK ? "the router ended the stream" : `${grpc.status[code]}: ${message}`, trailers, false);
      });
    const toRouter = (deliver: (l: CallListener) => void) =>
      setImmediate(() => {
        if (!this.blackholed && !router.ended && router.listener) deliver(router.listener);
      });
    this.bridgeSide = {
      write: (m) => toRouter((l) => l.message(Buffer.from(m))),
      end: () => {
        this.bridgeDone = true;
        toRouter((l) => l.halfClose());
      },
      cancel: () => {
        this.bridgeDone = true;
        toRouter((l) => l.cancel());
      },
      welcomed: () => {},
      discard: (why) => {
        this.discarded = why;
      },
      leave: () => {},
      runsOn: () => false,
      get bytesReceived() {
        return link.bytesToBridge;
      },
    };
  }

  blackhole(): void {
    this.blackholed = true;
  }

  /** Bytes to the bridge as if the router had sent them. */
  toBridge(message: Buffer): void {
    this.routerSide.write(message);
  }
}

/** Opens a raw bridge's Register streams on `server` (a router's) through memory. */
export class MemoryTransport implements RegisterOpener {
  readonly links: MemoryLink[] = [];
  private count = 0;

  constructor(private readonly server: GrpcServer) {}

  async open(path: string, listener: RegisterStreamListener, abandoned: () => boolean): Promise<RegisterStream | undefined> {
    await new Promise((r) => setImmediate(r));
    if (abandoned()) return undefined;
    // A port per stream, as separate connections would have (registration limits count per peer).
    const link = new MemoryLink(path, listener, `127.0.0.1:${6000 + this.count++}`);
    this.links.push(link);
    this.server.lookup(path)!.handle(link.routerSide, undefined);
    return link.bridgeSide;
  }

  close(): void {}
}
