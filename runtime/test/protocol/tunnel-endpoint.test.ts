// The TunnelEndpoint both ends of a Register stream share (protocol/tunnel-endpoint.ts),
// without sockets: a minimal end played here on a ManualClock, and the router's end
// (InstanceStream) behind createRouter({clock}) on a fake duplex. Flow-control credits,
// heartbeat timeouts, bad frames and draining are checked frame by frame.
import assert from "node:assert/strict";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { DrainSchema, HeadersSchema, OpenSchema, PingSchema, PongSchema, TrailersSchema, WindowUpdateSchema } from "../../src/gen/grpcrouter/v1/tunnel_pb.js";
import { ManualClock } from "../../src/resilience/clock.js";
import { FrameEncoder, InstanceFrame, RouterFrame, decodeControl, decodeFrames, type Frame } from "../../src/tunnel/index.js";
import { MAX_CREDIT, TunnelEndpoint, type EndpointCall } from "../../src/tunnel/protocol/tunnel-endpoint.js";
import { FrameError } from "../../src/tunnel/wire.js";
import { waitFor } from "../tunnel/helpers.js";
import { REGISTER, SERVER_STREAM, SERVER_STREAM_FIELD, UNARY, UNARY_FIELD, FakeCall, FakeInstance, clientCall, routerOnManualClock } from "./fake-duplex.js";

// ---- the endpoint itself, through a minimal end ----

/** A call of the minimal end: the credit it was granted and the payloads it got. */
class Call implements EndpointCall {
  credit = 0;
  readonly payloads: string[] = [];
  onWindowUpdate(bytes: number): void {
    this.credit += bytes;
  }
}

/**
 * A minimal end: the router's field numbers out, the instance's in; its handshake is one
 * Hello; calls are opened by the test; payload field 16 is the only method.
 */
class TestEnd extends TunnelEndpoint<Call> {
  readonly out: Buffer[] = [];
  failure: string | undefined;
  idled = 0;
  constructor(clock: ManualClock) {
    super(clock, { sends: RouterFrame, reads: InstanceFrame, malformed: "malformed test message" });
  }
  protected write(message: Buffer): void {
    this.out.push(message);
  }
  protected onHandshakeFrame(f: Frame): void {
    if (f.call !== 0 || f.field !== InstanceFrame.Hello) throw new FrameError(`expected Hello, got field ${f.field}`);
    this.phase = "open";
  }
  protected onStreamFrame(f: Frame): void {
    if (f.field === InstanceFrame.Drain) this.endWhenIdle();
    if (f.field === InstanceFrame.Health) throw new Error("a bug in a handler");
  }
  protected onCallControl(): void {}
  protected onPayload(call: Call, f: Frame): void {
    if (f.field !== 16) throw this.wrongField(f, 16, "/t.T/M");
    call.payloads.push(Buffer.from(f.body).toString());
  }
  fail(reason: string): void {
    this.failure ??= reason;
    this.markClosed(false);
  }
  protected idle(): void {
    this.idled++;
  }
  protected bytesReceived(): undefined {
    return undefined;
  }
  open(): Call {
    const c = new Call();
    this.addCall(this.maxCallId + 1, c);
    return c;
  }
  end(id: number, call: Call): boolean {
    return this.removeCall(id, call);
  }
  tick(now: number, interval: number, timeout: number): number | undefined {
    return this.heartbeat(now, interval, timeout);
  }
  /** Frames written so far (the sender flushes on the next tick). */
  async sent(): Promise<Frame[]> {
    await new Promise((r) => setImmediate(r));
    return this.out.flatMap((m) => decodeFrames(m));
  }
}

function message(build: (e: FrameEncoder) => void): Buffer {
  const e = new FrameEncoder();
  build(e);
  return e.take();
}

const hello = (e: FrameEncoder) => e.add(0, InstanceFrame.Hello, new Uint8Array(0));

function openEnd() {
  const clock = new ManualClock();
  const end = new TestEnd(clock);
  end.receive(message(hello));
  assert.equal(end.phase, "open");
  return { clock, end };
}

test("credits: a WindowUpdate reaches its call; more than 2^31 bytes at once closes only that endpoint, naming call and size", () => {
  const a = openEnd();
  const b = openEnd();
  const ca = a.end.open();
  const cb = b.end.open();
  a.end.receive(message((e) => e.addControl(1, InstanceFrame.WindowUpdate, WindowUpdateSchema, create(WindowUpdateSchema, { bytes: 4096 }))));
  assert.equal(ca.credit, 4096);
  a.end.receive(message((e) => e.addControl(1, InstanceFrame.WindowUpdate, WindowUpdateSchema, create(WindowUpdateSchema, { bytes: MAX_CREDIT }))));
  assert.equal(ca.credit, 4096 + MAX_CREDIT, "exactly the bound is still a credit");
  a.end.receive(message((e) => e.addControl(1, InstanceFrame.WindowUpdate, WindowUpdateSchema, create(WindowUpdateSchema, { bytes: MAX_CREDIT + 1 }))));
  assert.equal(a.end.failure, `window update of ${MAX_CREDIT + 1} bytes on call 1`);
  assert.equal(a.end.phase, "closed");
  assert.equal(ca.credit, 4096 + MAX_CREDIT, "the excess was not granted");
  // The neighbour is untouched and still takes credit and payloads.
  b.end.receive(
    message((e) => {
      e.addControl(1, InstanceFrame.WindowUpdate, WindowUpdateSchema, create(WindowUpdateSchema, { bytes: 10 }));
      e.add(1, 16, Buffer.from("hi"));
    }),
  );
  assert.equal(b.end.failure, undefined);
  assert.equal(cb.credit, 10);
  assert.deepEqual(cb.payloads, ["hi"]);
});

test("heartbeat: a Ping is answered with its nonce; idle for an interval, the endpoint pings; silent past the timeout, the peer is dead", async () => {
  const { clock, end } = openEnd();
  end.receive(message((e) => e.addControl(0, InstanceFrame.Ping, PingSchema, create(PingSchema, { nonce: 42n }))));
  const pong = (await end.sent()).find((f) => f.field === RouterFrame.Pong);
  assert.equal(decodeControl(PongSchema, pong!.body).nonce, 42n);
  const interval = 1000;
  const timeout = 2 * interval;
  const pings = async () => (await end.sent()).filter((f) => f.field === RouterFrame.Ping).length;
  // Ticks a quarter interval apart, as both ends run them.
  for (let t = 0; t < interval - 250; t += 250) {
    await clock.advance(250);
    assert.equal(end.tick(clock.now(), interval, timeout), undefined);
  }
  assert.equal(await pings(), 0, "nothing is due before an interval of silence");
  await clock.advance(250);
  assert.equal(end.tick(clock.now(), interval, timeout), undefined);
  assert.equal(await pings(), 1, "one interval idle: a Ping");
  await clock.advance(250);
  end.tick(clock.now(), interval, timeout);
  assert.equal(await pings(), 1, "one Ping per interval, not one per tick");
  // The peer stays silent: it is dead on the first tick past the timeout, within two intervals.
  let dead: number | undefined;
  let waited = interval + 250;
  while (dead === undefined) {
    await clock.advance(250);
    waited += 250;
    dead = end.tick(clock.now(), interval, timeout);
    assert.ok(waited <= timeout + 250, `still alive after ${waited} ms`);
  }
  assert.equal(dead, timeout + 250);
});

test("heartbeat: any message from the peer keeps it alive", async () => {
  const { clock, end } = openEnd();
  for (let i = 0; i < 40; i++) {
    await clock.advance(250);
    if (i % 6 === 0) end.receive(message((e) => e.addControl(0, InstanceFrame.Pong, PongSchema, create(PongSchema, { nonce: 1n }))));
    assert.equal(end.tick(clock.now(), 1000, 2000), undefined, `dead at ${(i + 1) * 250} ms`);
  }
});

test("bad frames close only their endpoint, each with its reason; frames after it are not read", () => {
  const cases: [string, Buffer, string | RegExp][] = [
    ["bytes that are no frames", Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), /^malformed test message: /],
    ["a frame for a call never opened", message((e) => e.add(7, 16, Buffer.from("x"))), "frame for call 7, which was never opened"],
    ["a payload on call 0", message((e) => e.add(0, 16, Buffer.from("x"))), "payload field 16 on call 0"],
    ["the wrong method's payload", message((e) => e.add(1, 17, Buffer.from("x"))), "call 1 is /t.T/M (field 16) but got payload field 17"],
    ["a control frame that does not decode", message((e) => e.add(0, InstanceFrame.Ping, Buffer.from([0xff]))), /^bad grpcrouter\.v1\.Ping: /],
    ["a handler's own bug", message((e) => e.add(0, InstanceFrame.Health, new Uint8Array(0))), /^frame handling failed: Error: a bug in a handler/],
  ];
  const neighbour = openEnd();
  const nc = neighbour.end.open();
  for (const [what, bad, reason] of cases) {
    const { end } = openEnd();
    const call = end.open();
    // The bad frame comes first; a good payload for the open call follows in the same message.
    end.receive(Buffer.concat([bad, message((e) => e.add(1, 16, Buffer.from("after")))]));
    if (typeof reason === "string") assert.equal(end.failure, reason, what);
    else assert.match(end.failure ?? "", reason, what);
    assert.equal(end.phase, "closed", what);
    assert.deepEqual(call.payloads, [], `${what}: nothing after the bad frame is read`);
    end.receive(message((e) => e.add(1, 16, Buffer.from("later"))));
    assert.deepEqual(call.payloads, [], `${what}: nothing is read once closed`);
  }
  neighbour.end.receive(message((e) => e.add(1, 16, Buffer.from("fine"))));
  assert.deepEqual(nc.payloads, ["fine"]);
  assert.equal(neighbour.end.failure, undefined);
});

test("a frame before the handshake is the end's to judge; late frames of an ended call are ignored", () => {
  const clock = new ManualClock();
  const early = new TestEnd(clock);
  early.receive(message((e) => e.add(1, 16, Buffer.from("x"))));
  assert.equal(early.failure, "expected Hello, got field 16");
  const { end } = openEnd();
  const first = end.open();
  end.open();
  assert.equal(end.end(1, first), true);
  // Call 1 ended here while the peer's frames for it were on their way: not a violation.
  end.receive(
    message((e) => {
      e.add(1, 16, Buffer.from("late"));
      e.addControl(1, InstanceFrame.WindowUpdate, WindowUpdateSchema, create(WindowUpdateSchema, { bytes: 5 }));
    }),
  );
  assert.equal(end.failure, undefined);
  assert.equal(end.end(1, first), false, "a call leaves the table once");
});

test("draining: the end is told once its last call has left, and not before", () => {
  const { end } = openEnd();
  const one = end.open();
  const two = end.open();
  end.receive(message((e) => e.addControl(0, InstanceFrame.Drain, DrainSchema, create(DrainSchema, { reason: "bye" }))));
  assert.equal(end.idled, 0, "two calls still run");
  end.end(2, two);
  assert.equal(end.idled, 0);
  end.end(1, one);
  assert.equal(end.idled, 1);
  // Drained with no call: at once.
  const other = openEnd();
  other.end.receive(message((e) => e.addControl(0, InstanceFrame.Drain, DrainSchema, create(DrainSchema, { reason: "bye" }))));
  assert.equal(other.end.idled, 1);
});

// ---- the router's end (InstanceStream) on a fake duplex, on the router's clock ----

test("router end: an idle instance is pinged after an interval; a silent one is dropped within two intervals, an answering one stays", async () => {
  const interval = 1000;
  const { clock, logs, router, server } = routerOnManualClock({ heartbeatIntervalMs: interval });
  const silent = new FakeInstance(server, "silent", "127.0.0.1:1001");
  const alive = new FakeInstance(server, "alive", "127.0.0.1:1002");
  await silent.welcomed();
  await alive.welcomed();
  const start = clock.now();
  let silentGoneAt: number | undefined;
  let pinged = 0;
  while (clock.now() - start < 4 * interval) {
    await clock.advance(50);
    await new Promise((r) => setImmediate(r)); // the sender's flush
    for (const f of alive.frames()) {
      if (f.field !== RouterFrame.Ping) continue;
      pinged++;
      const nonce = decodeControl(PingSchema, f.body).nonce;
      alive.send((e) => e.addControl(0, InstanceFrame.Pong, PongSchema, create(PongSchema, { nonce })));
    }
    if (silentGoneAt === undefined && silent.call.status) silentGoneAt = clock.now() - start;
  }
  assert.ok(pinged >= 2, `the idle instance was pinged ${pinged} times`);
  assert.ok(
    silent.frames().some((f) => f.field === RouterFrame.Ping) || silent.received.some((f) => f.field === RouterFrame.Ping),
    "the silent one was asked too",
  );
  assert.ok(silentGoneAt !== undefined, "the silent instance was dropped");
  // Default timeout: two intervals; the sweep runs every quarter interval.
  assert.ok(silentGoneAt > 2 * interval && silentGoneAt <= 2 * interval + interval / 4 + 50, `dropped after ${silentGoneAt} ms`);
  assert.equal(silent.call.status!.code, grpc.status.INVALID_ARGUMENT);
  assert.match(silent.call.status!.message, /^grpcrouter: no frame for \d+ ms \(heartbeat timeout\)$/);
  assert.equal(silent.call.abandoned, true, "its connection is given up too");
  assert.match(logs.join("\n"), /closing instance "silent".*heartbeat timeout/);
  assert.equal(alive.call.status, undefined, "the answering instance is still registered");
  assert.deepEqual(
    router.instances().map((i) => i.id),
    ["alive"],
  );
  await router.close(0);
});

test("router end: an instance whose message is still arriving is not silent; once its bytes stop, it is dropped", async () => {
  const interval = 1000;
  const { clock, router, server } = routerOnManualClock({ heartbeatIntervalMs: interval });
  const slow = new FakeInstance(server, "slow", "127.0.0.1:1003");
  await slow.welcomed();
  const start = clock.now();
  // For three intervals, a chunk of one long message every quarter interval, never a whole one.
  while (clock.now() - start < 3 * interval) {
    await clock.advance(250);
    slow.call.bytesReceived += 16 * 1024;
    await new Promise((r) => setImmediate(r));
  }
  assert.equal(slow.call.status, undefined, "bytes were arriving: not dropped past the two-interval timeout");
  // Then nothing more: silent past the timeout, it goes.
  const quietFrom = clock.now();
  const ended = () => slow.call.status as { message: string } | undefined; // (assert.equal narrowed it to undefined)
  while (!ended() && clock.now() - quietFrom < 4 * interval) await clock.advance(50);
  assert.match(ended()?.message ?? "", /heartbeat timeout/);
  const goneAfter = clock.now() - quietFrom;
  // The sweep runs every quarter interval: it sees the last bytes up to a quarter late, and
  // the timeout passing up to a quarter late too.
  assert.ok(goneAfter > 2 * interval && goneAfter <= 2 * interval + interval / 2 + 50, `dropped ${goneAfter} ms after its last bytes`);
  assert.deepEqual(router.instances(), []);
  await router.close(0);
});

test("router end: response credits: a WindowUpdate once the client took the bytes; a payload past the window closes that stream only", async () => {
  const window = 1024;
  const { router, server, logs } = routerOnManualClock({ callWindow: window });
  const hog = new FakeInstance(server, "hog", "127.0.0.1:1001");
  await hog.welcomed();
  const client = clientCall(server, SERVER_STREAM, Buffer.alloc(0));
  client.held = []; // a client that has not taken what the router wrote yet
  const open = await hog.next("Open", (f) => f.field === RouterFrame.Open);
  assert.equal(decodeControl(OpenSchema, open.body).method, SERVER_STREAM);
  const id = open.call;
  // The whole window in four responses: all delivered, no credit back while the client holds them.
  hog.send((e) => {
    e.addControl(id, InstanceFrame.Headers, HeadersSchema, create(HeadersSchema, {}));
    for (let i = 0; i < 4; i++) e.add(id, SERVER_STREAM_FIELD, Buffer.alloc(window / 4, i));
  });
  await waitFor("four responses at the client", () => client.written.length === 4);
  await new Promise((r) => setImmediate(r));
  assert.ok(!hog.frames().some((f) => f.field === RouterFrame.WindowUpdate), "no credit before the client took the bytes");
  // The client takes them: the credit comes back (in grants of a quarter window or more).
  for (const flushed of client.held.splice(0)) flushed();
  let granted = 0;
  await waitFor("the window granted back", () => {
    for (const f of hog.frames()) if (f.call === id && f.field === RouterFrame.WindowUpdate) granted += decodeControl(WindowUpdateSchema, f.body).bytes;
    return granted >= window;
  });
  assert.equal(granted, window);
  // The granted window again, then one byte beyond what was granted: the stream is closed.
  hog.send((e) => {
    for (let i = 0; i < 4; i++) e.add(id, SERVER_STREAM_FIELD, Buffer.alloc(window / 4, i));
    e.add(id, SERVER_STREAM_FIELD, Buffer.alloc(1));
  });
  assert.equal(hog.call.status?.code, grpc.status.INVALID_ARGUMENT);
  assert.match(hog.call.status!.message, /overran its window/);
  assert.match(logs.join("\n"), /closing instance "hog".*overran its window/);
  // Its call fails (its responses went out already, so it cannot move); the router goes on.
  await waitFor("the call's status", () => client.status !== undefined);
  assert.equal(client.status!.code, grpc.status.UNAVAILABLE);
  const next = new FakeInstance(server, "next", "127.0.0.1:1002");
  await next.welcomed();
  assert.deepEqual(
    router.instances().map((i) => i.id),
    ["next"],
  );
  await router.close(0);
});

test("router end: excess credit and malformed messages close only the sender's stream, with the reason in its status", async () => {
  const { router, server } = routerOnManualClock();
  const good = new FakeInstance(server, "good", "127.0.0.1:1001");
  const greedy = new FakeInstance(server, "greedy", "127.0.0.1:1002");
  const garbled = new FakeInstance(server, "garbled", "127.0.0.1:1003");
  for (const i of [good, greedy, garbled]) await i.welcomed();
  // A call on each of the two misbehaving instances (round robin spreads them).
  const calls = [clientCall(server, UNARY, Buffer.from("a")), clientCall(server, UNARY, Buffer.from("b")), clientCall(server, UNARY, Buffer.from("c"))];
  const opens = await Promise.all([good, greedy, garbled].map((i) => i.next("Open", (f) => f.field === RouterFrame.Open)));
  greedy.send((e) => e.addControl(opens[1]!.call, InstanceFrame.WindowUpdate, WindowUpdateSchema, create(WindowUpdateSchema, { bytes: 2 ** 31 + 1 })));
  garbled.sendBytes(Buffer.from([0x0a, 0x05, 0x08]));
  assert.equal(greedy.call.status?.code, grpc.status.INVALID_ARGUMENT);
  assert.equal(greedy.call.status?.message, `grpcrouter: window update of ${2 ** 31 + 1} bytes on call ${opens[1]!.call}`);
  assert.equal(garbled.call.status?.code, grpc.status.INVALID_ARGUMENT);
  assert.match(garbled.call.status!.message, /^grpcrouter: malformed Register message: /);
  // The good instance's call goes on and completes.
  const id = opens[0]!.call;
  good.send((e) => {
    e.add(id, UNARY_FIELD, Buffer.from("ok"));
    e.addControl(id, InstanceFrame.Trailers, TrailersSchema, create(TrailersSchema, { code: 0 }));
  });
  await waitFor("the good call's status", () => calls.every((c) => c.status !== undefined));
  const byCode = calls.map((c) => c.status!.code).sort();
  assert.deepEqual(byCode, [grpc.status.OK, grpc.status.UNAVAILABLE, grpc.status.UNAVAILABLE].sort());
  assert.equal(good.call.status, undefined);
  await router.close(0);
});

test("router end: an instance's Drain: no new calls there, its call in flight finishes, then the router ends the stream OK", async () => {
  const { router, server } = routerOnManualClock();
  const leaving = new FakeInstance(server, "leaving", "127.0.0.1:1001");
  await leaving.welcomed();
  const first = clientCall(server, UNARY, Buffer.from("1"));
  const open = await leaving.next("Open", (f) => f.field === RouterFrame.Open);
  leaving.send((e) => e.addControl(0, InstanceFrame.Drain, DrainSchema, create(DrainSchema, { reason: "stopping" })));
  const staying = new FakeInstance(server, "staying", "127.0.0.1:1002");
  await staying.welcomed();
  const second = clientCall(server, UNARY, Buffer.from("2"));
  await staying.next("the second call's Open", (f) => f.field === RouterFrame.Open);
  await new Promise((r) => setImmediate(r));
  assert.ok(!leaving.frames().some((f) => f.field === RouterFrame.Open), "no new call on a drained stream");
  assert.equal(leaving.call.status, undefined, "the stream stays while its call runs");
  leaving.send((e) => {
    e.add(open.call, UNARY_FIELD, Buffer.from("done"));
    e.addControl(open.call, InstanceFrame.Trailers, TrailersSchema, create(TrailersSchema, { code: 0 }));
  });
  await waitFor("the first call's status", () => first.status !== undefined);
  assert.equal(first.status!.code, grpc.status.OK);
  await waitFor("the router to end the drained stream", () => leaving.call.status !== undefined);
  assert.equal(leaving.call.status!.code, grpc.status.OK);
  assert.equal(second.status, undefined, "the other instance's call is untouched");
  await router.close(0);
});

test("router end: no Hello within the Hello timeout (on the router's clock) closes the stream", async () => {
  const { clock, router, server } = routerOnManualClock({ helloTimeoutMs: 5000 });
  const mute = new FakeInstance(server, "x", "127.0.0.1:1001");
  // FakeInstance said Hello; a second stream says nothing at all.
  const quiet = new FakeCall(REGISTER, new grpc.Metadata(), Infinity, "127.0.0.1:1002");
  server.lookup(REGISTER)!.handle(quiet, undefined);
  await mute.welcomed();
  const status = () => quiet.status;
  await clock.advance(4999);
  assert.equal(status(), undefined);
  await clock.advance(2);
  assert.deepEqual(status(), { code: grpc.status.INVALID_ARGUMENT, message: "grpcrouter: no Hello within 5000 ms" });
  assert.equal(mute.call.status, undefined);
  await router.close(0);
});
