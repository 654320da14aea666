// The bridge's end of a Register stream (RegisterConnection, a TunnelEndpoint) against
// a real router, without sockets: the bridge opens its Register streams through a
// MemoryTransport (bridge/register-transport.ts's interface) into the router's GrpcServer,
// and both ends keep time on one ManualClock. Flow control, heartbeats, bad frames and
// draining are checked across both ends.
import assert from "node:assert/strict";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { WindowUpdateSchema } from "../../src/gen/grpcrouter/v1/tunnel_pb.js";
import { CallError, FrameEncoder, RouterFrame, decodeFrames, type RawHandler, type RouterOptions } from "../../src/tunnel/index.js";
import { createRawBridgeWith, type BridgeOptions } from "../../src/tunnel/bridge/raw-bridge.js";
import { TestTunnel, quietLog, waitFor } from "../tunnel/helpers.js";
import { MemoryTransport, SERVER_STREAM, UNARY, clientCall, routerOnManualClock, type MemoryLink } from "./fake-duplex.js";

function tunnelInMemory(handler: RawHandler, router: Partial<RouterOptions> = {}, bridge: Partial<BridgeOptions> = {}) {
  const r = routerOnManualClock(router);
  const transport = new MemoryTransport(r.server);
  const bridgeLogs: string[] = [];
  const b = createRawBridgeWith(
    TestTunnel,
    handler,
    { router: "127.0.0.1:1", instanceId: "mem", logger: quietLog(bridgeLogs), backoff: { initialMs: 10, maxMs: 50 }, ...bridge },
    { transport: () => transport, clock: r.clock },
  );
  return { ...r, transport, bridge: b, bridgeLogs };
}

/** Lets a few event-loop turns pass (messages cross the memory link one turn each way). */
async function turns(n = 20): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

/** The link whose router side was sent an Open. */
function linkWithOpen(links: MemoryLink[]): { link: MemoryLink; call: number } | undefined {
  for (const link of links) {
    const open = link.routerSide.written.flatMap((m) => decodeFrames(m)).find((f) => f.field === RouterFrame.Open);
    if (open) return { link, call: open.call };
  }
  return undefined;
}

const echo: RawHandler = async (call) => {
  for await (const r of call.requests) await call.send(r);
  return { code: 0 };
};

test("bridge end: a unary call crosses both endpoints in memory", async () => {
  const t = tunnelInMemory(echo);
  await t.bridge.start();
  const client = clientCall(t.server, UNARY, Buffer.from("ping"));
  await waitFor("the status", () => client.status !== undefined);
  assert.equal(client.status!.code, grpc.status.OK, client.status!.message);
  assert.deepEqual(client.written.map(String), ["ping"]);
  await t.bridge.stop(0);
  await t.router.close(0);
});

test("bridge end: a handler that throws before returning a promise fails its call with the error's status; one that returns the status itself ends it so", async () => {
  let throwNow = true;
  const t = tunnelInMemory(((call: Parameters<RawHandler>[0]) => {
    if (throwNow) throw new CallError(grpc.status.FAILED_PRECONDITION, `not now: ${call.method}`);
    return { code: grpc.status.NOT_FOUND, details: "plain" };
  }) as unknown as RawHandler);
  await t.bridge.start();
  const thrown = clientCall(t.server, UNARY, Buffer.from("a"));
  await waitFor("the status", () => thrown.status !== undefined);
  assert.equal(thrown.status!.code, grpc.status.FAILED_PRECONDITION);
  assert.match(thrown.status!.message, /^not now: \//);
  throwNow = false;
  const plain = clientCall(t.server, UNARY, Buffer.from("b"));
  await waitFor("the status", () => plain.status !== undefined);
  assert.equal(plain.status!.code, grpc.status.NOT_FOUND, plain.status!.message);
  assert.equal(plain.status!.message, "plain");
  await t.bridge.stop(0);
  await t.router.close(0);
});

test("bridge end: a handler's sends wait once the router's window is spent, and go on when the client takes the bytes", async () => {
  const window = 1024;
  let resolved = 0;
  const t = tunnelInMemory(
    async (call) => {
      for (let i = 0; i < 8; i++) {
        await call.send(Buffer.alloc(window / 4, i));
        resolved++;
      }
      return { code: 0 };
    },
    { callWindow: window },
  );
  await t.bridge.start();
  const client = clientCall(t.server, SERVER_STREAM, Buffer.alloc(0));
  client.held = []; // the client does not take what it is sent
  await waitFor("a window of responses at the client", () => client.written.length === 4);
  await turns();
  // The fourth send spent the window: its promise waits; nothing beyond the window was sent
  // (the router would have closed the stream for it).
  assert.equal(resolved, 3);
  assert.equal(client.written.length, 4);
  assert.equal(t.transport.links[0]!.routerSide.status, undefined);
  for (const flushed of client.held.splice(0)) flushed();
  await waitFor("the next window", () => client.written.length === 8);
  await turns();
  assert.equal(resolved, 7);
  for (const flushed of client.held.splice(0)) flushed();
  await waitFor("the status", () => client.status !== undefined);
  assert.equal(resolved, 8);
  assert.equal(client.status!.code, grpc.status.OK);
  await t.bridge.stop(0);
  await t.router.close(0);
});

test("bridge end: excess credit or a payload on call 0 from the router closes only that Register stream, which registers anew", async () => {
  const hostile: [string, (call: number) => Buffer, RegExp][] = [
    [
      "excess credit",
      (call) => {
        const e = new FrameEncoder();
        e.addControl(call, RouterFrame.WindowUpdate, WindowUpdateSchema, create(WindowUpdateSchema, { bytes: 2 ** 31 + 1 }));
        return e.take();
      },
      /lost \(window update of 2147483649 bytes on call \d+\); reconnecting/,
    ],
    [
      "a payload on call 0",
      () => {
        const e = new FrameEncoder();
        e.add(0, 17, Buffer.from("x"));
        return e.take();
      },
      /lost \(payload field 17 on call 0\); reconnecting/,
    ],
  ];
  for (const [what, frame, reason] of hostile) {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const t = tunnelInMemory(
      async (call) => {
        await held;
        await call.send(Buffer.from("late"));
        return { code: 0 };
      },
      {},
      { streams: 2 },
    );
    await t.bridge.start();
    clientCall(t.server, SERVER_STREAM, Buffer.alloc(0));
    let target: { link: MemoryLink; call: number } | undefined;
    await waitFor(`${what}: the Open`, () => (target = linkWithOpen(t.transport.links)) !== undefined);
    const other = t.transport.links.find((l) => l !== target!.link)!;
    target!.link.toBridge(frame(target!.call));
    await waitFor(`${what}: the bridge's log`, () => reason.test(t.bridgeLogs.join("\n")));
    await waitFor(`${what}: a new stream registered`, () => t.transport.links.length === 3 && t.router.instances()[0]?.streams === 2);
    assert.equal(other.routerSide.ended, false, `${what}: the other stream is untouched`);
    release();
    await t.bridge.stop(0);
    await t.router.close(0);
  }
});

test("bridge end: a router gone silent is dropped within two keepalive intervals on the clock; the router drops the bridge alike, and it registers anew", async () => {
  const interval = 1000;
  const t = tunnelInMemory(echo, { heartbeatIntervalMs: interval }, { keepaliveMs: interval });
  await t.bridge.start();
  const first = t.transport.links[0]!;
  // Idle for a while first: both ends ping and answer, nobody is dropped.
  for (let i = 0; i < 12; i++) {
    await t.clock.advance(interval / 4);
    await turns(4);
  }
  assert.equal(t.transport.links.length, 1, t.bridgeLogs.join("\n"));
  first.blackhole();
  const start = t.clock.now();
  let bridgeLost: number | undefined;
  while (t.clock.now() - start < 4 * interval) {
    await t.clock.advance(interval / 4);
    await turns(4);
    if (bridgeLost === undefined && /lost \(no frame from the router/.test(t.bridgeLogs.join("\n"))) bridgeLost = t.clock.now() - start;
  }
  assert.ok(bridgeLost !== undefined, t.bridgeLogs.join("\n"));
  assert.ok(bridgeLost <= 2 * interval + interval / 4, `the bridge noticed after ${bridgeLost} ms`);
  assert.match(t.bridgeLogs.join("\n"), /lost \(no frame from the router for \d+ ms \(keepalive 1000 ms\)\)/);
  assert.match(first.discarded ?? "", /no frame from the router/, "its connection is discarded too");
  assert.match(first.routerSide.status?.message ?? "", /heartbeat timeout/);
  await waitFor("a new stream registered", () => t.transport.links.length === 2 && t.router.instances().length === 1);
  await t.bridge.stop(0);
  await t.router.close(0);
});

test("bridge end: a router whose message is still arriving is not silent; once its bytes stop, the bridge gives up on it", async () => {
  const interval = 1000;
  const t = tunnelInMemory(echo, { heartbeatIntervalMs: 60 * interval }, { keepaliveMs: interval });
  await t.bridge.start();
  const first = t.transport.links[0]!;
  // Nothing whole passes either way from now on; for three intervals a chunk of one long
  // message reaches the bridge every quarter interval.
  first.blackhole();
  const start = t.clock.now();
  while (t.clock.now() - start < 3 * interval) {
    await t.clock.advance(interval / 4);
    first.bytesToBridge += 16 * 1024;
    await turns(4);
  }
  assert.doesNotMatch(t.bridgeLogs.join("\n"), /no frame from the router/, "bytes were arriving: the bridge kept the stream");
  // Then nothing more: the bridge gives up on it within its keepalive timeout and a sweep or two.
  const quietFrom = t.clock.now();
  let lostAfter: number | undefined;
  while (lostAfter === undefined && t.clock.now() - quietFrom < 4 * interval) {
    await t.clock.advance(interval / 4);
    await turns(4);
    if (/no frame from the router/.test(t.bridgeLogs.join("\n"))) lostAfter = t.clock.now() - quietFrom;
  }
  assert.ok(lostAfter !== undefined && lostAfter > 2 * interval && lostAfter <= 2 * interval + interval / 2, `lost after ${lostAfter} ms`);
  await t.bridge.stop(0);
  await t.router.close(0);
});

test("bridge end: stop() drains: no new calls, the call in flight finishes, the router ends the stream, then stop resolves", async () => {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const t = tunnelInMemory(async (call) => {
    await held;
    await call.send(Buffer.from("done"));
    return { code: 0 };
  });
  await t.bridge.start();
  const running = clientCall(t.server, UNARY, Buffer.from("x"));
  await waitFor("the call at the bridge", () => linkWithOpen(t.transport.links) !== undefined);
  let stopped = false;
  const stopping = t.bridge.stop(30_000).then(() => (stopped = true));
  await waitFor("the router to take the instance out", () => t.router.instances()[0]?.draining === true);
  await turns();
  assert.equal(stopped, false, "stop waits for the call in flight");
  release();
  await stopping;
  assert.equal(running.status?.code, grpc.status.OK);
  assert.deepEqual(running.written.map(String), ["done"]);
  assert.equal(t.transport.links[0]!.routerSide.status?.code, grpc.status.OK, "the router ended the drained stream");
  await t.router.close(0);
});
