import assert from "node:assert/strict";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { SimpleRequestSchema, SimpleResponseSchema } from "./gen/interop/v1/test_pb.js";
import { TestClient, methodOf, startBridge, startRouter } from "./helpers.js";

test("a unary call goes through the router to a bridged Connect service", async () => {
  const { router, target } = await startRouter();
  const bridge = await startBridge(target, "a");
  const client = new TestClient(target);
  try {
    const { res } = await client.unary(methodOf("UnaryCall"), SimpleRequestSchema, SimpleResponseSchema, create(SimpleRequestSchema, { responseSize: 10 }));
    assert.equal(res.payload?.body.length, 10);
    assert.equal(res.instanceId, "a");
  } finally {
    client.close();
    await bridge.stop(100);
    await router.close(100);
  }
});
