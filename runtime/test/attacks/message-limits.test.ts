// Attack 3 of the security issue: a big response must not kill the whole instance. A valid
// response of maxMessageBytes minus a few bytes is answered; an oversized message (either
// way) fails only its own call with RESOURCE_EXHAUSTED naming the size and the limit; the
// instance's Register stream, and its neighbours' calls, go on; a lost instance is logged
// with the reason.
import assert from "node:assert/strict";
import { test } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { FrameEncoder, TunnelFrames } from "./frames-shim.js";
import { SimpleRequestSchema, SimpleResponseSchema } from "../tunnel/gen/interop/v1/test_pb.js";
import { TestClient, methodOf, startBridge, startRouter, waitFor } from "../tunnel/helpers.js";
import { MiB, rawInstance } from "./attacker.js";

const unary = (client: TestClient, responseSize: number, payload = 0) =>
  client.unary(
    methodOf("UnaryCall"),
    SimpleRequestSchema,
    SimpleResponseSchema,
    create(SimpleRequestSchema, { responseSize, payload: { body: new Uint8Array(payload) } }),
    new grpc.Metadata(),
    { deadline: Date.now() + 30_000 },
  );

/** A SimpleResponse of exactly `bytes` encoded bytes. */
function responseOf(bytes: number): Uint8Array {
  // payload (field 1) { body (field 2) }: tags and lengths take a few bytes of `bytes`.
  for (let body = bytes - 12; body < bytes; body++) {
    const m = toBinary(SimpleResponseSchema, create(SimpleResponseSchema, { payload: { body: new Uint8Array(body) } }));
    if (m.length === bytes) return m;
  }
  throw new Error(`cannot build a response of ${bytes} bytes`);
}

test("a response of 4 MiB minus 12 bytes is answered through a router at its default limit, and its stream keeps serving", { timeout: 120_000 }, async () => {
  const { router, target, logs } = await startRouter();
  const inst = rawInstance(target, "big");
  const client = new TestClient(target);
  try {
    assert.equal((await inst.welcome)?.accepted, true);
    const big = responseOf(4 * MiB - 12);
    inst.call.on("data", () => {
      for (const id of inst.opens.splice(0)) {
        const enc = new FrameEncoder();
        enc.add(id, 17, big);
        enc.addControl(id, TunnelFrames.Trailers, TunnelFrames.TrailersSchema, create(TunnelFrames.TrailersSchema, { code: 0 }));
        inst.call.write(enc.take());
      }
    });
    const { res } = await unary(client, 0);
    assert.equal(toBinary(SimpleResponseSchema, res).length, 4 * MiB - 12);
    // The same stream goes on serving.
    assert.equal(toBinary(SimpleResponseSchema, (await unary(client, 0)).res).length, 4 * MiB - 12);
    assert.equal(router.instances()[0]?.streams, 1);
    assert.ok(!logs.some((l) => /closing|deregistered/.test(l)), logs.join("\n"));
  } finally {
    client.close();
    inst.close();
    await router.close(0);
  }
});

test("an oversized response fails only its call (RESOURCE_EXHAUSTED naming size and limit); the stream and a neighbour go on", {
  timeout: 120_000,
}, async () => {
  const limit = 1 * MiB;
  const { router, target, logs } = await startRouter({ maxMessageBytes: limit });
  const hog = rawInstance(target, "hog");
  const client = new TestClient(target);
  let neighbour: Awaited<ReturnType<typeof startBridge>> | undefined;
  try {
    assert.equal((await hog.welcome)?.accepted, true);
    const tooBig = responseOf(limit + 1000);
    const fine = responseOf(100);
    let n = 0;
    hog.call.on("data", () => {
      for (const id of hog.opens.splice(0)) {
        const enc = new FrameEncoder();
        enc.add(id, 17, n++ === 0 ? tooBig : fine);
        enc.addControl(id, TunnelFrames.Trailers, TunnelFrames.TrailersSchema, create(TunnelFrames.TrailersSchema, { code: 0 }));
        hog.call.write(enc.take());
      }
    });
    const err = await unary(client, 0).then(
      () => assert.fail("the oversized response was delivered"),
      (e: grpc.ServiceError) => e,
    );
    assert.equal(err.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.match(err.details, new RegExp(`response message of ${limit + 1000} bytes is larger than the limit of ${limit} bytes`));
    // The same Register stream answers the next call.
    assert.equal(toBinary(SimpleResponseSchema, (await unary(client, 0)).res).length, 100);
    assert.equal(router.instances()[0]?.streams, 1);
    assert.ok(!logs.some((l) => /closing|deregistered/.test(l)), logs.join("\n"));

    // A client's oversized request fails its call the same way, before any instance sees it.
    neighbour = await startBridge(target, "neighbour");
    const req = await unary(client, 1, limit + 10).then(
      () => assert.fail("the oversized request was routed"),
      (e: grpc.ServiceError) => e,
    );
    assert.equal(req.code, grpc.status.RESOURCE_EXHAUSTED);
    // Refused by the router's HTTP/2 server from the message's length prefix, before it is read.
    assert.match(req.details, /larger than max \(\d+ vs\. 1048576\)|request message of \d+ bytes is larger than the limit of 1048576 bytes/);
  } finally {
    await neighbour?.stop(0);
    client.close();
    hog.close();
    await router.close(0);
  }
});

test("a bridge refuses its own oversized response for that call alone; the router logs why an instance went away", { timeout: 120_000 }, async () => {
  const { router, target, logs } = await startRouter();
  const bridge = await startBridge(target, "bridged", { maxMessageBytes: 64 * 1024 });
  const client = new TestClient(target);
  try {
    const err = await unary(client, 100 * 1024).then(
      () => assert.fail("delivered"),
      (e: grpc.ServiceError) => e,
    );
    assert.equal(err.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.match(err.details, /larger than the limit of 65536/);
    assert.equal((await unary(client, 10)).res.instanceId, "bridged");
    await bridge.stop(0);
    await waitFor("the instance to be gone", () => router.instances().length === 0);
    assert.ok(
      logs.some((l) => /deregistered instance "bridged" of interop\.v1\.TestService: .+/.test(l)),
      logs.join("\n"),
    );
  } finally {
    client.close();
    await router.close(0);
  }
});
