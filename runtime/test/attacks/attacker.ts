// What the attack tests use as the attacker: a hand-written instance speaking the Register
// protocol over a plain grpc-js client (so the tests hold whatever data plane the router
// runs), RSS sampling, and small helpers. Only public behaviour is observed.
import { create, fromBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { HelloSchema, ProtocolVersion, WelcomeSchema, type Welcome } from "../../src/gen/grpcrouter/v1/tunnel_pb.js";
import { FrameEncoder, InstanceFrame, RouterFrame, decodeFrames } from "../../src/tunnel/index.js";

export const REGISTER = "/interop.v1.TestServiceRouter/Register";
export const SERVICE = "interop.v1.TestService";

export interface RawInstance {
  call: grpc.ClientDuplexStream<Buffer, Buffer>;
  client: grpc.Client;
  /** Resolves with the router's Welcome (accepted or not), or undefined when the stream ended without one. */
  welcome: Promise<Welcome | undefined>;
  status: Promise<grpc.StatusObject>;
  /** Call ids the router opened on this stream. */
  opens: number[];
  /** Bytes of Register messages received so far. */
  received: { bytes: number; messages: number };
  close(): void;
}

/** Opens a Register stream and says Hello (as `id`, with `credentials`); does not wait for the Welcome. */
export function rawInstance(
  target: string,
  id: string,
  options: { credentials?: Record<string, string>; client?: grpc.Client; read?: boolean } = {},
): RawInstance {
  const client = options.client ?? new grpc.Client(target, grpc.credentials.createInsecure(), { "grpc.max_receive_message_length": -1 });
  const call = client.makeBidiStreamRequest(
    REGISTER,
    (b: Buffer) => b,
    (b: Buffer) => b,
  );
  const opens: number[] = [];
  const received = { bytes: 0, messages: 0 };
  const status = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
  call.on("error", () => {});
  let settle!: (w: Welcome | undefined) => void;
  const welcome = new Promise<Welcome | undefined>((resolve) => (settle = resolve));
  void status.then(() => settle(undefined));
  call.on("data", (m: Buffer) => {
    received.bytes += m.length;
    received.messages++;
    for (const f of decodeFrames(m)) {
      if (f.call === 0 && f.field === RouterFrame.Welcome) settle(fromBinary(WelcomeSchema, f.body));
      if (f.field === RouterFrame.Open) opens.push(f.call);
    }
    // An attacker that never reads: stop after the Welcome.
    if (options.read === false) call.pause();
  });
  const enc = new FrameEncoder();
  enc.addControl(
    0,
    InstanceFrame.Hello,
    HelloSchema,
    create(HelloSchema, { protocolVersion: ProtocolVersion.PROTOCOL_VERSION_1, instanceId: id, service: SERVICE, credentials: options.credentials ?? {} }),
  );
  call.write(enc.take());
  return { call, client, welcome, status, opens, received, close: () => (options.client ? call.cancel() : client.close()) };
}

/**
 * Answers every call the router opens on `inst` at once with one response message
 * (`response`, in StreamingOutputCall's frame field 18), with no backpressure: the attacker's
 * memory is its own problem. Returns the ids answered so far.
 */
export function answerEveryOpen(inst: RawInstance, response: Uint8Array): Set<number> {
  const answered = new Set<number>();
  inst.call.on("data", () => {
    for (const id of inst.opens) {
      if (answered.has(id)) continue;
      answered.add(id);
      const enc = new FrameEncoder();
      enc.add(id, 18, response);
      inst.call.write(enc.take());
    }
  });
  return answered;
}

/** Resident set size now, in bytes, after a GC when the test runs with --expose-gc. */
export function rss(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().rss;
}

export const MiB = 1024 * 1024;

// ---- a router in a child process ----

import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { RouterStats } from "../../src/tunnel/index.js";

export interface RouterProcess {
  target: string;
  child: ChildProcess;
  measure(): Promise<{ rss: number; buffers: number; stats: RouterStats & Record<string, unknown>; logs: string[]; logCount: number }>;
  close(): Promise<void>;
}

/** Starts a router (RouterOptions as JSON, without services) in its own process. */
export async function routerProcess(options: Record<string, unknown> = {}): Promise<RouterProcess> {
  const child = fork(fileURLToPath(new URL("./fixtures/router-process.ts", import.meta.url)), [JSON.stringify(options)], {
    execArgv: ["--conditions=@grpcrouter/source", "--import", "tsx", "--expose-gc"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once("message", (m) => resolve((m as { port: number }).port));
    child.once("exit", (code) => reject(new Error(`the router process exited (${code})`)));
  });
  const measure = () =>
    new Promise<{ rss: number; buffers: number; stats: RouterStats & Record<string, unknown>; logs: string[]; logCount: number }>((resolve) => {
      child.once("message", (m) => resolve(m as never));
      child.send("stats");
    });
  return {
    target: `127.0.0.1:${port}`,
    child,
    measure,
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.send("close");
        setTimeout(() => child.kill("SIGKILL"), 5000).unref();
      }),
  };
}

export async function waitUntil(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// ---- a gRPC client that never reads (node:http2, its stream paused from the start) ----

import http2 from "node:http2";

/** One HTTP/2 connection for calls whose responses are never read. */
export function stalledClient(target: string): { call(path: string, request: Uint8Array): http2.ClientHttp2Stream; close(): void } {
  // A small window: what the router may push before it has to buffer is a few KiB per call.
  const session = http2.connect(`http://${target}`, { settings: { initialWindowSize: 16 * 1024 } });
  session.on("error", () => {});
  return {
    call(path, request) {
      const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers" });
      stream.on("error", () => {});
      stream.pause();
      const frame = Buffer.alloc(5 + request.length);
      frame.writeUInt32BE(request.length, 1);
      frame.set(request, 5);
      stream.end(frame);
      return stream;
    },
    close: () => session.destroy(),
  };
}

/**
 * An instance that says Hello over node:http2, waits for its Welcome, then never reads again
 * (its stream paused, a small window): what the router writes to it piles up on the router's
 * side unless the router bounds it. `write` sends Register messages (gRPC-framed here).
 */
export async function stalledInstance(
  target: string,
  id: string,
): Promise<{ write(message: Buffer): boolean; drained(): Promise<void>; closed: Promise<void>; close(): void }> {
  const session = http2.connect(`http://${target}`, { settings: { initialWindowSize: 16 * 1024 } });
  session.on("error", () => {});
  const stream = session.request({ ":method": "POST", ":path": REGISTER, "content-type": "application/grpc", te: "trailers" });
  stream.on("error", () => {});
  const closed = new Promise<void>((resolve) => stream.on("close", () => resolve()));
  const grpcFrame = (m: Buffer) => {
    const f = Buffer.alloc(5 + m.length);
    f.writeUInt32BE(m.length, 1);
    m.copy(f, 5);
    return f;
  };
  const enc = new FrameEncoder();
  enc.addControl(
    0,
    InstanceFrame.Hello,
    HelloSchema,
    create(HelloSchema, { protocolVersion: ProtocolVersion.PROTOCOL_VERSION_1, instanceId: id, service: SERVICE }),
  );
  stream.write(grpcFrame(enc.take()));
  // The first response message holds the Welcome; after it, nothing is read.
  await new Promise<void>((resolve, reject) => {
    let got = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      if (got.length < 5 || got.length < 5 + got.readUInt32BE(1)) return;
      stream.off("data", onData);
      stream.pause();
      const accepted = decodeFrames(got.subarray(5, 5 + got.readUInt32BE(1))).some(
        (f) => f.field === RouterFrame.Welcome && fromBinary(WelcomeSchema, f.body).accepted,
      );
      if (accepted) resolve();
      else reject(new Error("not welcomed"));
    };
    stream.on("data", onData);
    stream.once("close", () => reject(new Error("closed before Welcome")));
  });
  return {
    write: (m) => stream.write(grpcFrame(m)),
    drained: () => new Promise<void>((resolve) => stream.once("drain", () => resolve())),
    closed,
    close: () => session.destroy(),
  };
}
