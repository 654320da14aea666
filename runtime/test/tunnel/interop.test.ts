// The gRPC interop cases (grpc/doc/interop-test-descriptions.md), each through a router to a
// bridged Connect implementation, with a plain grpc-js client: it cannot tell the router is there.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import type { Bridge, Router } from "../../src/tunnel/index.js";
import {
  EmptySchema,
  SimpleRequestSchema,
  SimpleResponseSchema,
  StreamingInputCallRequestSchema,
  StreamingInputCallResponseSchema,
  StreamingOutputCallRequestSchema,
  StreamingOutputCallResponseSchema,
  type StreamingOutputCallResponse,
} from "./gen/interop/v1/test_pb.js";
import { ECHO_INITIAL, ECHO_TRAILING, TestClient, collect, errorOf, methodOf, startBridge, startRouter, waitFor, type ImplProbe } from "./helpers.js";

let router: Router;
let bridge: Bridge;
let client: TestClient;
const probe: ImplProbe = { aborted: [], produced: 0, started: [] };

before(async () => {
  const r = await startRouter();
  router = r.router;
  bridge = await startBridge(r.target, "interop", {}, probe);
  client = new TestClient(r.target);
});

after(async () => {
  client.close();
  await bridge.stop(100);
  await router.close(100);
});

const payload = (n: number) => ({ body: new Uint8Array(n).fill(n & 0xff) });

test("empty_unary", async () => {
  const { res } = await client.unary(methodOf("EmptyCall"), EmptySchema, EmptySchema, create(EmptySchema));
  assert.deepEqual(res, create(EmptySchema));
});

test("large_unary", async () => {
  const { res } = await client.unary(
    methodOf("UnaryCall"),
    SimpleRequestSchema,
    SimpleResponseSchema,
    create(SimpleRequestSchema, { responseSize: 314159, payload: payload(271828) }),
  );
  assert.equal(res.payload?.body.length, 314159);
  assert.ok(res.payload!.body.every((b) => b === 0));
});

test("client_streaming", async () => {
  const res = await new Promise<unknown>((resolve, reject) => {
    const call = client.clientStream(
      methodOf("StreamingInputCall"),
      StreamingInputCallRequestSchema,
      StreamingInputCallResponseSchema,
      new grpc.Metadata(),
      {},
      (err, r) => (err ? reject(err) : resolve(r)),
    );
    for (const n of [27182, 8, 1828, 45904]) call.write(create(StreamingInputCallRequestSchema, { payload: payload(n) }));
    call.end();
  });
  assert.equal((res as { aggregatedPayloadSize: number }).aggregatedPayloadSize, 74922);
});

test("server_streaming", async () => {
  const sizes = [31415, 9, 2653, 58979];
  const call = client.serverStream(
    methodOf("StreamingOutputCall"),
    StreamingOutputCallRequestSchema,
    StreamingOutputCallResponseSchema,
    create(StreamingOutputCallRequestSchema, { responseParameters: sizes.map((size) => ({ size })) }),
  );
  const { messages, status } = await collect(call);
  assert.equal(status.code, grpc.status.OK);
  assert.deepEqual(
    messages.map((m) => m.payload?.body.length),
    sizes,
  );
});

test("ping_pong", async () => {
  const call = client.bidi(methodOf("FullDuplexCall"), StreamingOutputCallRequestSchema, StreamingOutputCallResponseSchema);
  const done = collect(call);
  const pairs = [
    [27182, 31415],
    [8, 9],
    [1828, 2653],
    [45904, 58979],
  ] as const;
  const got: number[] = [];
  for (const [req, res] of pairs) {
    const next = new Promise<StreamingOutputCallResponse>((resolve) => call.once("data", resolve));
    call.write(create(StreamingOutputCallRequestSchema, { payload: payload(req), responseParameters: [{ size: res }] }));
    got.push((await next).payload!.body.length);
  }
  call.end();
  const { status } = await done;
  assert.equal(status.code, grpc.status.OK);
  assert.deepEqual(
    got,
    pairs.map((p) => p[1]),
  );
});

test("empty_stream", async () => {
  const call = client.bidi(methodOf("FullDuplexCall"), StreamingOutputCallRequestSchema, StreamingOutputCallResponseSchema);
  call.end();
  const { messages, status } = await collect(call);
  assert.equal(status.code, grpc.status.OK);
  assert.equal(messages.length, 0);
});

test("cancel_after_begin", async () => {
  const before = probe.aborted.filter((a) => a.startsWith("streamingInputCall")).length;
  const begun = probe.started!.filter((a) => a === "streamingInputCall").length;
  let call!: { cancel(): void };
  const failed = new Promise<grpc.ServiceError>((resolve) => {
    call = client.clientStream(
      methodOf("StreamingInputCall"),
      StreamingInputCallRequestSchema,
      StreamingInputCallResponseSchema,
      new grpc.Metadata(),
      {},
      (e) => resolve(e!),
    );
  });
  // Cancel once the call has begun on the instance (its handler runs); a fixed delay was not
  // always enough on a loaded machine, and a call cancelled before it began aborts no handler.
  await waitFor("the handler to start", () => probe.started!.filter((a) => a === "streamingInputCall").length > begun);
  call.cancel();
  const err = await failed;
  assert.equal(err.code, grpc.status.CANCELLED);
  await waitFor("the handler's abort signal", () => probe.aborted.filter((a) => a.startsWith("streamingInputCall")).length > before);
});

test("cancel_after_first_response", async () => {
  const before = probe.aborted.filter((a) => a.startsWith("fullDuplexCall")).length;
  const call = client.bidi(methodOf("FullDuplexCall"), StreamingOutputCallRequestSchema, StreamingOutputCallResponseSchema);
  const done = collect(call);
  call.write(create(StreamingOutputCallRequestSchema, { payload: payload(27182), responseParameters: [{ size: 31415 }] }));
  await new Promise((resolve) => call.once("data", resolve));
  call.cancel();
  const { status } = await done;
  assert.equal(status.code, grpc.status.CANCELLED);
  await waitFor("the handler's abort signal", () => probe.aborted.filter((a) => a.startsWith("fullDuplexCall")).length > before);
});

test("timeout_on_sleeping_server", async () => {
  const before = probe.aborted.length;
  // 3 s, not the spec's few ms: the handler must have begun on the instance before the
  // deadline to learn of it below, and on a loaded machine that can take a second.
  const call = client.bidi(methodOf("FullDuplexCall"), StreamingOutputCallRequestSchema, StreamingOutputCallResponseSchema, new grpc.Metadata(), {
    deadline: Date.now() + 3000,
  });
  const done = collect(call);
  call.write(create(StreamingOutputCallRequestSchema, { payload: payload(27182), responseParameters: [{ size: 1, intervalUs: 20_000_000 }] }));
  const { status } = await done;
  assert.equal(status.code, grpc.status.DEADLINE_EXCEEDED);
  // The sleeping handler learns of it through its abort signal, as a deadline.
  await waitFor("the handler's abort signal", () => probe.aborted.length > before);
  assert.match(probe.aborted.slice(before).join("\n"), /fullDuplexCall: .*deadline/i);
  // A unary call too: the router answers DEADLINE_EXCEEDED, not CANCELLED.
  const err = await errorOf(
    client.unary(
      methodOf("UnaryCall"),
      SimpleRequestSchema,
      SimpleResponseSchema,
      create(SimpleRequestSchema, { responseSize: -20_000 }),
      new grpc.Metadata(),
      {
        deadline: Date.now() + 100,
      },
    ),
  );
  assert.equal(err.code, grpc.status.DEADLINE_EXCEEDED);
});

test("custom_metadata", async () => {
  const md = () => {
    const m = new grpc.Metadata();
    m.set(ECHO_INITIAL, "test_initial_metadata_value");
    m.set(ECHO_TRAILING, Buffer.from([0xab, 0xab, 0xab]));
    return m;
  };
  const { headers, status } = await client.unary(
    methodOf("UnaryCall"),
    SimpleRequestSchema,
    SimpleResponseSchema,
    create(SimpleRequestSchema, { responseSize: 314159, payload: payload(271828) }),
    md(),
  );
  assert.deepEqual(headers.get(ECHO_INITIAL), ["test_initial_metadata_value"]);
  assert.deepEqual(status.metadata.get(ECHO_TRAILING), [Buffer.from([0xab, 0xab, 0xab])]);

  const call = client.bidi(methodOf("FullDuplexCall"), StreamingOutputCallRequestSchema, StreamingOutputCallResponseSchema, md());
  const done = collect(call);
  call.write(create(StreamingOutputCallRequestSchema, { payload: payload(271828), responseParameters: [{ size: 314159 }] }));
  call.end();
  const r = await done;
  assert.equal(r.status.code, grpc.status.OK);
  assert.deepEqual(r.headers?.get(ECHO_INITIAL), ["test_initial_metadata_value"]);
  assert.deepEqual(r.status.metadata.get(ECHO_TRAILING), [Buffer.from([0xab, 0xab, 0xab])]);
});

test("status_code_and_message", async () => {
  const responseStatus = { code: 2, message: "test status message" };
  const err = await errorOf(client.unary(methodOf("UnaryCall"), SimpleRequestSchema, SimpleResponseSchema, create(SimpleRequestSchema, { responseStatus })));
  assert.equal(err.code, 2);
  assert.equal(err.details, "test status message");

  const call = client.bidi(methodOf("FullDuplexCall"), StreamingOutputCallRequestSchema, StreamingOutputCallResponseSchema);
  const done = collect(call);
  call.write(create(StreamingOutputCallRequestSchema, { responseStatus }));
  call.end();
  const { status } = await done;
  assert.equal(status.code, 2);
  assert.equal(status.details, "test status message");

  // Error details (google.rpc.Status in grpc-status-details-bin) pass through as bytes.
  const withDetails = await errorOf(
    client.unary(
      methodOf("UnaryCall"),
      SimpleRequestSchema,
      SimpleResponseSchema,
      create(SimpleRequestSchema, { responseStatus: { code: 9, message: "details: see the bytes" } }),
    ),
  );
  assert.equal(withDetails.code, grpc.status.FAILED_PRECONDITION);
  const bin = withDetails.metadata.get("grpc-status-details-bin")[0] as Buffer;
  assert.ok(bin instanceof Buffer, "grpc-status-details-bin is present");
  assert.ok(bin.includes(Buffer.from("type.googleapis.com/interop.v1.EchoStatus")));
  assert.ok(bin.includes(Buffer.from("details: see the bytes")));
});

test("special_status_message", async () => {
  const message = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n";
  const err = await errorOf(
    client.unary(methodOf("UnaryCall"), SimpleRequestSchema, SimpleResponseSchema, create(SimpleRequestSchema, { responseStatus: { code: 2, message } })),
  );
  assert.equal(err.code, 2);
  assert.equal(err.details, message);
});

test("unimplemented_method", async () => {
  const err = await errorOf(client.unary(methodOf("UnimplementedCall"), EmptySchema, EmptySchema, create(EmptySchema)));
  assert.equal(err.code, grpc.status.UNIMPLEMENTED);
});

test("unimplemented_service", async () => {
  const err = await errorOf(client.unary(methodOf("UnimplementedCall", "interop.v1.UnimplementedService"), EmptySchema, EmptySchema, create(EmptySchema)));
  assert.equal(err.code, grpc.status.UNIMPLEMENTED);
});
