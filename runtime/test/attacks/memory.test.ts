// Attack 2 of the security issue: one registered instance makes the router grow without
// bound. (a) It floods Pings and never reads the Pongs. (b) It answers every call with one
// big message to clients that never read, each call overdrawing its window by that message.
// The router runs in a process of its own; we read its RSS and its queued/held byte counters.
import assert from "node:assert/strict";
import { test } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { PingSchema } from "../../src/gen/grpcrouter/v1/tunnel_pb.js";
import { FrameEncoder, InstanceFrame } from "../../src/tunnel/index.js";
import {
  SimpleRequestSchema,
  SimpleResponseSchema,
  StreamingOutputCallRequestSchema,
  StreamingOutputCallResponseSchema,
} from "../tunnel/gen/interop/v1/test_pb.js";
import { TestClient, methodOf, startBridge } from "../tunnel/helpers.js";
import { MiB, answerEveryOpen, rawInstance, routerProcess, stalledClient, stalledInstance, waitUntil } from "./attacker.js";

/** Writes `message` until `total` bytes went out or the router stopped reading (no drain for `stallMs`). */
async function flood(inst: { write(m: Buffer): boolean; drained(): Promise<void> }, message: Buffer, total: number, stallMs = 3000): Promise<number> {
  let sent = 0;
  while (sent < total) {
    sent += message.length;
    if (!inst.write(message)) {
      const drained = await Promise.race([inst.drained().then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), stallMs))]);
      if (!drained) break;
    }
  }
  return sent;
}

test("a Ping flood from an instance that never reads: the Pong queue is bounded, the stream is dropped", { timeout: 180_000 }, async () => {
  const rp = await routerProcess({ heartbeatIntervalMs: 1000, maxQueuedBytesPerStream: Number(process.env.ATTACK_QUEUE_BOUND ?? MiB) });
  try {
    const before = await rp.measure();
    const attacker = await stalledInstance(rp.target, "pinger");
    // ~1 MiB of Ping frames per Register message.
    const enc = new FrameEncoder();
    const ping = create(PingSchema, { nonce: 12345n });
    while (enc.size < MiB) enc.addControl(0, InstanceFrame.Ping, PingSchema, ping);
    const message = enc.take();
    const sent = await flood(attacker, message, 60 * MiB, 5000);
    await waitUntil("the router to drop the instance that does not read", async () =>
      (await rp.measure()).logs.some((l) => /closing instance "pinger".*does not read its Register stream/.test(l)),
    );
    const after = await rp.measure();
    const line = after.logs.find((l) => /does not read its Register stream/.test(l))!;
    const queued = Number(/\((\d+) bytes queued/.exec(line)![1]);
    const grew = after.rss - before.rss;
    const buffers = after.buffers - before.buffers;
    console.log(
      `ping flood: the router read ${(sent / MiB).toFixed(0)} of 60 MiB of Pings, then stopped reading; Pong bytes queued when it dropped the instance ${(queued / MiB).toFixed(2)} MiB; router RSS ${(before.rss / MiB).toFixed(0)} → ${(after.rss / MiB).toFixed(0)} MiB, Buffers ${buffers >= 0 ? "+" : ""}${(buffers / MiB).toFixed(1)} MiB`,
    );
    // The router stopped reading long before the attacker was done (HTTP/2 flow control
    // then holds the attacker's Pings on its side) and dropped it with the reason.
    assert.ok(sent < 45 * MiB, `the router read ${sent} bytes of Pings`);
    assert.ok(queued <= 4 * MiB, `queued ${queued}`);
    assert.equal(after.stats.streams.length, 0, "the stream is gone");
    // What the router keeps in Buffers after the drop, and RSS (which includes the heap the
    // Pings' decoding grew, kept committed by V8): generous bounds.
    assert.ok(buffers < 40 * MiB, `router Buffers grew by ${(buffers / MiB).toFixed(0)} MiB`);
    assert.ok(grew < 250 * MiB, `router RSS grew by ${(grew / MiB).toFixed(0)} MiB`);
    attacker.close();
  } finally {
    await rp.close();
  }
});

test("big responses to clients that never read: streamBufferBytes holds, overdraw included; a neighbour's call succeeds", { timeout: 180_000 }, async () => {
  const streamBufferBytes = 8 * MiB;
  const messageBytes = 2 * MiB;
  const calls = 120;
  const rp = await routerProcess({ streamBufferBytes, callWindow: 64 * 1024 });
  const client = new TestClient(rp.target);
  const good = await startBridge(rp.target, "neighbour");
  try {
    const before = await rp.measure();
    const attacker = rawInstance(rp.target, "hog");
    assert.equal((await attacker.welcome)?.accepted, true);
    const body = Buffer.alloc(messageBytes + 16);
    // A StreamingOutputCallResponse with a payload of messageBytes: field 1 (payload) { field 2 (body) }.
    const response = Buffer.from(
      toBinary(
        StreamingOutputCallResponseSchema,
        create(StreamingOutputCallResponseSchema, { payload: { body: body.subarray(0, messageBytes) }, instanceId: "hog" }),
      ),
    );
    // Every Open on the attacker's stream gets one big message at once (the router granted 64 KiB).
    const answered = answerEveryOpen(attacker, response);
    // Clients that never read: streaming calls with nobody consuming them.
    const stalled = stalledClient(rp.target);
    const request = toBinary(StreamingOutputCallRequestSchema, create(StreamingOutputCallRequestSchema, { responseParameters: [{ size: 1 }] }));
    const streams = Array.from({ length: calls }, () => stalled.call(methodOf("StreamingOutputCall"), request));
    await waitUntil("the attacker to get its calls", () => answered.size >= calls / 2 - 5);
    // Let the router take in everything it is willing to take.
    let last = -1;
    await waitUntil("the router's held bytes to settle", async () => {
      const m = await rp.measure();
      const b = m.stats.bufferedBytes;
      const settled = b === last;
      last = b;
      if (!settled) await new Promise((r) => setTimeout(r, 500));
      return settled;
    });
    const during = await rp.measure();
    const grew = during.rss - before.rss;
    const offered = answered.size * messageBytes;
    console.log(
      `big responses: ${answered.size} calls × ${messageBytes / MiB} MiB offered (${(offered / MiB).toFixed(0)} MiB); router holds ${(during.stats.bufferedBytes / MiB).toFixed(1)} MiB (bound ${streamBufferBytes / MiB} MiB + one message); RSS ${(before.rss / MiB).toFixed(0)} → ${(during.rss / MiB).toFixed(0)} MiB`,
    );
    assert.ok(during.stats.bufferedBytes <= streamBufferBytes + messageBytes + 64 * 1024, `held ${during.stats.bufferedBytes}`);
    // Held bytes, the ~16 messages grpc-js reads ahead, HTTP/2 windows: generous.
    assert.ok(grew < 80 * MiB, `router RSS grew by ${(grew / MiB).toFixed(0)} MiB for ${(offered / MiB).toFixed(0)} MiB offered`);

    // The neighbour instance still answers (calls the balancer gives the hog wait; give them a deadline).
    const results = await Promise.all(
      Array.from({ length: 6 }, () =>
        client
          .unary(methodOf("UnaryCall"), SimpleRequestSchema, SimpleResponseSchema, create(SimpleRequestSchema, { responseSize: 3 }), new grpc.Metadata(), {
            deadline: Date.now() + 5000,
          })
          .then(
            (r) => r.res.instanceId,
            (e: grpc.ServiceError) => e.code,
          ),
      ),
    );
    assert.ok(results.includes("neighbour"), `results: ${results.join(", ")}`);
    for (const s of streams) s.close();
    stalled.close();
    attacker.close();
  } finally {
    client.close();
    await good.stop(0);
    await rp.close();
  }
});

test("two instances hogging at once: the router-wide budget (maxBufferedBytes) holds across streams", { timeout: 180_000 }, async () => {
  const budget = 6 * MiB;
  const messageBytes = 2 * MiB;
  const rp = await routerProcess({ maxBufferedBytes: budget, streamBufferBytes: 64 * MiB });
  const stalled = stalledClient(rp.target);
  try {
    const response = Buffer.from(
      toBinary(StreamingOutputCallResponseSchema, create(StreamingOutputCallResponseSchema, { payload: { body: new Uint8Array(messageBytes) } })),
    );
    const hogs = ["hog-a", "hog-b"].map((id) => {
      const inst = rawInstance(rp.target, id);
      return { inst, answered: answerEveryOpen(inst, response) };
    });
    for (const h of hogs) assert.equal((await h.inst.welcome)?.accepted, true);
    const request = toBinary(StreamingOutputCallRequestSchema, create(StreamingOutputCallRequestSchema, { responseParameters: [{ size: 1 }] }));
    const streams = Array.from({ length: 40 }, () => stalled.call(methodOf("StreamingOutputCall"), request));
    await waitUntil("both hogs to get calls", () => hogs.every((h) => h.answered.size >= 15));
    let last = -1;
    await waitUntil("the router's held bytes to settle", async () => {
      const b = (await rp.measure()).stats.bufferedBytes;
      const settled = b === last;
      last = b;
      if (!settled) await new Promise((r) => setTimeout(r, 500));
      return settled;
    });
    const m = await rp.measure();
    const offered = hogs.reduce((n, h) => n + h.answered.size, 0) * messageBytes;
    console.log(
      `router-wide budget: ${(offered / MiB).toFixed(0)} MiB offered by 2 instances; router holds ${(m.stats.bufferedBytes / MiB).toFixed(1)} MiB (budget ${budget / MiB} MiB + one message per stream); paused streams ${m.stats.pausedStreams}`,
    );
    assert.ok(m.stats.bufferedBytes <= budget + 2 * (messageBytes + 64 * 1024), `held ${m.stats.bufferedBytes}`);
    assert.equal(m.stats.pausedStreams, 2);
    for (const s of streams) s.close();
    for (const h of hogs) h.inst.close();
  } finally {
    stalled.close();
    await rp.close();
  }
});

test("Ping floods from several instances: the router-wide queue bound (maxQueuedBytes) holds", { timeout: 180_000 }, async () => {
  // The heartbeat timeout is long (10 s) on purpose. Each flood message is ~175,000 Ping
  // frames; on a loaded machine the router decodes the three streams' messages in turn, and a
  // stream whose first message waits behind the others' for the timeout was dropped as
  // silent before it was ever read (seen: "no frame for 2243 ms", 34 bytes read). After a
  // drop the router reads and discards what the peer still sends until it closes the
  // connection, so the attacker's byte count then says nothing about the bound: the
  // assertions below tell a dropped stream from one the router kept reading.
  const rp = await routerProcess({ maxQueuedBytesPerStream: 64 * MiB, maxQueuedBytes: 2 * MiB, heartbeatIntervalMs: 1000, heartbeatTimeoutMs: 10_000 });
  try {
    const enc = new FrameEncoder();
    const ping = create(PingSchema, { nonce: 7n });
    while (enc.size < MiB) enc.addControl(0, InstanceFrame.Ping, PingSchema, ping);
    const message = enc.take();
    const ids = ["p1", "p2", "p3"];
    const attackers = await Promise.all(ids.map((id) => stalledInstance(rp.target, id)));
    const sent = await Promise.all(attackers.map((a) => flood(a, message, 30 * MiB, 3000)));
    const m = await rp.measure();
    const dropped = (id: string) => m.logs.some((l) => l.startsWith(`deregistered instance "${id}"`));
    console.log(
      `router-wide queue: 3 instances sent ${sent.map((n) => (n / MiB).toFixed(0)).join("+")} MiB of Pings; queued ${(m.stats.queuedBytes / MiB).toFixed(2)} MiB (bound 2 MiB + one message's Pongs per stream); paused ${m.stats.pausedStreams}`,
    );
    assert.ok(m.stats.queuedBytes <= 2 * MiB + 3 * 2 * MiB, `queued ${m.stats.queuedBytes}`);
    // Every flooding stream was stopped: the router paused reading it (the router-wide bound
    // did that; the per-stream one is 64 MiB), or dropped it (then the router decodes and
    // queues nothing more of it, whatever the attacker still writes).
    for (const [i, id] of ids.entries()) {
      assert.ok(sent[i]! < 30 * MiB || dropped(id), `the router read ${sent[i]} bytes of Pings from ${id} and kept reading it`);
    }
    assert.ok(
      ids.some((id, i) => sent[i]! < 30 * MiB && !dropped(id)),
      `no stream was stopped by the router-wide bound (all dropped first): ${m.logs.join(" | ")}`,
    );
    // None of them reads: each is dropped (for not reading, or — once the flood stopped and
    // others' drops let it read again — for silence), and the queue is empty again.
    await waitUntil("the router to drop the three", async () => {
      const logs = (await rp.measure()).logs;
      // ("closing …" lines of one kind are rate-limited; each departure has its own line.)
      return ["p1", "p2", "p3"].every((id) => logs.some((l) => l.startsWith(`deregistered instance "${id}"`)));
    });
    assert.ok((await rp.measure()).logs.some((l) => /does not read its Register stream/.test(l)));
    await waitUntil("the queue to be empty", async () => (await rp.measure()).stats.queuedBytes === 0);
    for (const a of attackers) a.close();
  } finally {
    await rp.close();
  }
});

test("a stream closed for a protocol error while Pongs wait for it is reset: its unsent bytes do not outlive the budget", { timeout: 180_000 }, async () => {
  // The attacker queues Pongs it never reads, under every bound, then breaks the protocol.
  // Closing the stream takes its bytes out of the router-wide budget, so they must go with
  // it: a status sent after them would wait behind them for as long as the attacker keeps
  // not reading, and each Register stream closed that way would keep up to the per-stream
  // bound that nothing counts any more.
  const rp = await routerProcess({ maxQueuedBytesPerStream: 64 * MiB, heartbeatIntervalMs: 1000, heartbeatTimeoutMs: 60_000 });
  try {
    const enc = new FrameEncoder();
    const ping = create(PingSchema, { nonce: 9n });
    while (enc.size < MiB) enc.addControl(0, InstanceFrame.Ping, PingSchema, ping);
    const pings = enc.take();
    const attacker = await stalledInstance(rp.target, "breaker");
    let closed = false;
    void attacker.closed.then(() => (closed = true));
    for (let i = 0; i < 3; i++) attacker.write(pings);
    await waitUntil("the router to queue the Pongs", async () => (await rp.measure()).stats.queuedBytes >= 2 * MiB);
    // A frame for a call that was never opened.
    enc.addControl(5, InstanceFrame.Ping, PingSchema, ping);
    attacker.write(enc.take());
    await waitUntil("the router to drop the instance", async () => (await rp.measure()).logs.some((l) => /closing instance "breaker".*never opened/.test(l)));
    assert.equal((await rp.measure()).stats.queuedBytes, 0, "its bytes left the budget");
    // The attacker still reads nothing: only a reset ends the stream (and frees what was queued).
    await waitUntil("the router to reset the stream", () => closed, 30_000);
    attacker.close();
  } finally {
    await rp.close();
  }
});
