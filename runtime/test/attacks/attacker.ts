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
export function rawInstance(target: string, id: string, options: { credentials?: Record<string, string>; client?: grpc.Client; read?: boolean } = {}): RawInstance {
  const client = options.client ?? new grpc.Client(target, grpc.credentials.createInsecure(), { "grpc.max_receive_message_length": -1 });
  const call = client.makeBidiStreamRequest(REGISTER, (b: Buffer) => b, (b: Buffer) => b);
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

/** Resident set size now, in bytes, after a GC when the test runs with --expose-gc. */
export function rss(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().rss;
}

export const MiB = 1024 * 1024;
