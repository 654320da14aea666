// The frame codec against protobuf-es: spliced frames must be byte-identical to the typed
// generated frame messages, and decoding must slice out exactly the payload bytes.
import assert from "node:assert/strict";
import { test } from "node:test";
import { create, fromBinary, toBinary, type DescMessage, type Message } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { FrameEncoder, FrameError, FrameSender, InstanceFrame, RouterFrame, decodeFrames } from "../../src/tunnel/index.js";
import { HalfCloseSchema, HeadersSchema, MetadataEntrySchema, OpenSchema, TrailersSchema, WindowUpdateSchema } from "../../src/gen/grpcrouter/v1/tunnel_pb.js";
import { encodeControl } from "../../src/tunnel/control-codec.js";
import { decodeControl } from "../../src/tunnel/frames.js";
import { SimpleRequestSchema, SimpleResponseSchema } from "./gen/interop/v1/test_pb.js";
import { TestServiceInstanceMessageSchema, TestServiceRouterMessageSchema } from "./gen/interop/v1/test_router_pb.js";

test("spliced request frames are byte-identical to protobuf-es's typed frames", () => {
  const request = create(SimpleRequestSchema, { responseSize: 314159, payload: { body: new Uint8Array(271828).fill(7) } });
  const requestBytes = toBinary(SimpleRequestSchema, request);
  const open = create(OpenSchema, {
    method: "/interop.v1.TestService/UnaryCall",
    metadata: [create(MetadataEntrySchema, { key: "x-bin", value: new Uint8Array([0, 255, 1]) })],
    timeout: durationFromMs(1500),
    peer: "ipv4:127.0.0.1:1234",
  });
  const bigCall = 2 ** 40 + 3; // a varint longer than 32 bits
  const enc = new FrameEncoder();
  enc.addControl(1, RouterFrame.Open, OpenSchema, open);
  enc.add(1, 17, requestBytes);
  enc.addControl(1, RouterFrame.HalfClose, HalfCloseSchema, create(HalfCloseSchema));
  enc.addControl(0, RouterFrame.Ping, WindowUpdateSchema, create(WindowUpdateSchema, { bytes: 0 }));
  enc.add(bigCall, 16, new Uint8Array(0));
  const spliced = enc.take();

  const typed = toBinary(
    TestServiceRouterMessageSchema,
    create(TestServiceRouterMessageSchema, {
      frames: [
        { call: 1n, frame: { case: "open", value: open } },
        { call: 1n, frame: { case: "unaryCall", value: request } },
        { call: 1n, frame: { case: "halfClose", value: {} } },
        { call: 0n, frame: { case: "ping", value: {} } },
        { call: BigInt(bigCall), frame: { case: "emptyCall", value: {} } },
      ],
    }),
  );
  assert.deepEqual(new Uint8Array(spliced), typed);

  const frames = decodeFrames(spliced);
  assert.deepEqual(
    frames.map((f) => [f.call, f.field]),
    [
      [1, 3],
      [1, 17],
      [1, 4],
      [0, 7],
      [bigCall, 16],
    ],
  );
  assert.deepEqual(new Uint8Array(frames[1]!.body), requestBytes);
  assert.equal(frames[1]!.body.buffer, spliced.buffer, "the payload is a view, not a copy");
});

test("response payloads are sliced out of protobuf-es-encoded instance messages", () => {
  const response = create(SimpleResponseSchema, { payload: { body: new Uint8Array(1000).fill(3) }, instanceId: "a" });
  const typed = toBinary(
    TestServiceInstanceMessageSchema,
    create(TestServiceInstanceMessageSchema, {
      frames: [
        { call: 5n, frame: { case: "headers", value: {} } },
        { call: 5n, frame: { case: "unaryCall", value: response } },
        { call: 5n, frame: { case: "trailers", value: { code: 3, message: "bad ☺", details: new Uint8Array([1, 2]) } } },
      ],
    }),
  );
  const frames = decodeFrames(typed);
  assert.deepEqual(
    frames.map((f) => [f.call, f.field]),
    [
      [5, InstanceFrame.Headers],
      [5, 17],
      [5, InstanceFrame.Trailers],
    ],
  );
  assert.deepEqual(fromBinary(SimpleResponseSchema, frames[1]!.body), response);
  const trailers = fromBinary(TrailersSchema, frames[2]!.body);
  assert.equal(trailers.message, "bad ☺");
});

test("malformed bytes throw FrameError, never a RangeError", () => {
  const bad: Uint8Array[] = [
    new Uint8Array([0x0a, 0x05, 0x08]), // length past the end
    new Uint8Array([0x0a, 0x02, 0x08, 0xff]), // truncated varint inside the frame
    new Uint8Array([0x08, 0x01]), // frames field with wire type 0
    new Uint8Array([0x0a, 0x02, 0x0a, 0x01]), // call field with wire type 2 (length past end)
    new Uint8Array([0x0a, 0x01, 0x0f]), // wire type 7
    new Uint8Array(11).fill(0xff), // an endless varint
  ];
  for (const b of bad) assert.throws(() => decodeFrames(b), FrameError, `bytes ${Buffer.from(b).toString("hex")}`);
  assert.deepEqual(decodeFrames(new Uint8Array(0)), []);
});

test("a sender batches one event-loop turn into one message, cut at the batch limit", async () => {
  const messages: Buffer[] = [];
  const sender = new FrameSender((m) => messages.push(m), 1000);
  for (let call = 1; call <= 10; call++) sender.send(call, 16, new Uint8Array(300).fill(call));
  sender.control(0, RouterFrame.Ping, WindowUpdateSchema, create(WindowUpdateSchema));
  assert.equal(messages.length, 3, "cut twice while queuing (at 1000 bytes)");
  await new Promise((r) => setImmediate(r));
  assert.equal(messages.length, 4, "the rest leaves at the end of the turn");
  assert.ok(messages.every((m) => m.length <= 1000));
  const frames = messages.flatMap((m) => decodeFrames(m));
  assert.deepEqual(
    frames.map((f) => f.call),
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0],
  );
  assert.ok(frames.slice(0, 10).every((f, i) => f.body.length === 300 && f.body[0] === i + 1));
});

test("a lone frame leaves at once; frames queued by later callbacks of a busy turn leave together", async () => {
  const messages: Buffer[] = [];
  const sender = new FrameSender((m) => messages.push(m));
  sender.send(1, 16, new Uint8Array([1]));
  await new Promise((r) => process.nextTick(r));
  assert.equal(messages.length, 1, "an idle stream does not wait for the end of the turn");
  // Five I/O-like callbacks in one turn: the first one's frame leaves right after it, the
  // other four wait for the end of the turn and share one message.
  await new Promise<void>((done) => {
    for (let call = 2; call <= 6; call++) {
      setImmediate(() => {
        sender.send(call, 16, new Uint8Array([call]));
        if (call === 6) setImmediate(() => setImmediate(done));
      });
    }
  });
  assert.deepEqual(
    messages.map((m) => decodeFrames(m).map((f) => f.call)),
    [[1], [2], [3, 4, 5, 6]],
  );
});

test("the hand-written control codec (Open, Headers, Trailers, WindowUpdate) agrees with protobuf-es both ways", () => {
  const entry = (key: string, value: string | number[]) =>
    create(MetadataEntrySchema, { key, value: typeof value === "string" ? Buffer.from(value) : new Uint8Array(value) });
  const cases: Array<[DescMessage, Message]> = [
    [OpenSchema, create(OpenSchema)],
    [OpenSchema, create(OpenSchema, { method: "/demo.v1.Echo/Say", peer: "127.0.0.1:5000" })],
    [
      OpenSchema,
      create(OpenSchema, {
        method: "/a/B",
        metadata: [entry("x-a", "1"), entry("x-a", "2"), entry("x-bin", [0, 255]), entry("", ""), entry("k", "")],
        timeout: durationFromMs(1500),
        peer: "[::1]:1",
      }),
    ],
    [OpenSchema, create(OpenSchema, { method: "/a/B", timeout: durationFromMs(0) })],
    [OpenSchema, create(OpenSchema, { method: "/a/B", timeout: { seconds: 99_999_999n * 3600n, nanos: 999_999_999 } })],
    [OpenSchema, create(OpenSchema, { method: "/a/B", timeout: { seconds: -5n, nanos: -1 } })],
    [OpenSchema, create(OpenSchema, { method: "/ünïcode/Ме́тод", metadata: [entry("x-ü", "ß"), entry("x-long", "v".repeat(300))], peer: "p" })],
    [TrailersSchema, create(TrailersSchema)],
    [TrailersSchema, create(TrailersSchema, { code: 14, message: "gone", details: new Uint8Array([8, 14]), metadata: [entry("x-t", "v")] })],
    [TrailersSchema, create(TrailersSchema, { code: 2 ** 32 - 1, message: "€ non-ascii" })],
    [TrailersSchema, create(TrailersSchema, { message: "m".repeat(200) })],
    [HeadersSchema, create(HeadersSchema)],
    [HeadersSchema, create(HeadersSchema, { metadata: [entry("x-h", "1"), entry("x-h-bin", [1, 2, 3])] })],
    [WindowUpdateSchema, create(WindowUpdateSchema)],
    [WindowUpdateSchema, create(WindowUpdateSchema, { bytes: 65536 })],
    [WindowUpdateSchema, create(WindowUpdateSchema, { bytes: 2 ** 32 - 1 })],
  ];
  for (const [i, [schema, message]] of cases.entries()) {
    const bytes = toBinary(schema, message);
    assert.deepEqual(new Uint8Array(encodeControl(schema, message)), bytes, `case ${i}: ${schema.typeName} encodes as protobuf-es does`);
    // Frame bodies are views into the received Buffer; both decoders get the same one.
    const body = Buffer.from(bytes);
    assert.deepEqual(decodeControl(schema, body), fromBinary(schema, body), `case ${i}: ${schema.typeName} decodes as protobuf-es does`);
  }
  // Bytes protobuf-es would write differently or never writes: unknown fields, a second
  // timeout (merged), a varint beyond uint32, the wrong wire type; each decodes (or fails) as protobuf-es does.
  const odd: Array<[DescMessage, number[]]> = [
    [OpenSchema, [0x0a, 1, 0x41, 0x28, 7]],
    [OpenSchema, [0x1a, 2, 0x08, 5, 0x1a, 2, 0x10, 9]],
    [OpenSchema, [0x1a, 11, 0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]],
    [TrailersSchema, [0x08, 0x80, 0x80, 0x80, 0x80, 0x10]],
    [TrailersSchema, [0x0a, 0]],
    [TrailersSchema, [0x12, 2, 0xc3, 0x28]],
    [HeadersSchema, [0x0a, 3, 0x0a, 1, 0xe9]],
    [WindowUpdateSchema, [0x08, 0xff, 0xff, 0xff, 0xff, 0x7f]],
    [WindowUpdateSchema, [0x08]],
  ];
  for (const [schema, raw] of odd) {
    const body = Buffer.from(raw);
    let expected: unknown;
    try {
      expected = fromBinary(schema, body);
    } catch {
      assert.throws(() => decodeControl(schema, body), FrameError, `${schema.typeName} ${raw}: protobuf-es refuses it, so must we`);
      continue;
    }
    assert.deepEqual(decodeControl(schema, body), expected, `${schema.typeName} ${raw}`);
  }
});

test("decoded strings reused from call to call are always the bytes of this frame", () => {
  // The codec reuses a string it decoded before when the bytes match (control-codec.ts):
  // many distinct strings of the same length and hash slot, repeated and interleaved, must
  // each come back as written, never as a neighbour's.
  const methods = Array.from({ length: 300 }, (_, i) => `/svc.v1.S/M${String(i).padStart(3, "0")}`);
  const peers = Array.from({ length: 50 }, (_, i) => `127.0.0.${i}:50${String(i).padStart(3, "0")}`);
  for (let round = 0; round < 3; round++) {
    for (const [i, method] of methods.entries()) {
      const peer = peers[(i * 7 + round) % peers.length]!;
      const body = Buffer.from(
        toBinary(OpenSchema, create(OpenSchema, { method, peer, metadata: [create(MetadataEntrySchema, { key: `x-k${i % 9}`, value: Buffer.from("v") })] })),
      );
      const open = decodeControl(OpenSchema, body);
      assert.equal(open.method, method);
      assert.equal(open.peer, peer);
      assert.equal(open.metadata[0]?.key, `x-k${i % 9}`);
    }
  }
});
