// Attack 1 of the security issue: an instance registers under ANOTHER instance's id to take
// half of its calls (metadata and bodies). The id belongs to the principal that registered
// it first; another principal is refused PERMISSION_DENIED and receives nothing, while the
// owner itself may always come back under its id.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { tokenAuthorizer, tokenCredentials, tokenFileAuthorizer } from "../../src/auth/index.js";
import { SimpleRequestSchema, SimpleResponseSchema } from "../tunnel/gen/interop/v1/test_pb.js";
import { TestClient, methodOf, startBridge, startRouter, waitFor } from "../tunnel/helpers.js";
import { rawInstance } from "./attacker.js";

const say = (client: TestClient) =>
  client.unary(methodOf("UnaryCall"), SimpleRequestSchema, SimpleResponseSchema, create(SimpleRequestSchema, { responseSize: 1 }), new grpc.Metadata({}));

test("an impostor with a valid token of its own cannot register under another instance's id", async () => {
  const { router, target, logs } = await startRouter({ authorize: tokenAuthorizer({ tokens: ["victim-token", "attacker-token"] }) });
  const victim = await startBridge(target, "payments-1", { credentialsHook: tokenCredentials("victim-token"), labels: { zone: "a" } });
  const client = new TestClient(target);
  try {
    const impostor = rawInstance(target, "payments-1", { credentials: { token: "attacker-token" } });
    const welcome = await impostor.welcome;
    assert.equal(welcome?.accepted, false, "the impostor is not welcomed");
    assert.match(welcome!.reason, /instance id "payments-1" of interop\.v1\.TestService is registered by another principal/);
    const status = await impostor.status;
    assert.equal(status.code, grpc.status.PERMISSION_DENIED);
    impostor.close();

    // The victim keeps its labels and its single stream, and gets every call.
    const [view] = router.instances();
    assert.equal(view!.streams, 1);
    assert.deepEqual(view!.labels, { zone: "a" });
    for (let i = 0; i < 20; i++) assert.equal((await say(client)).res.instanceId, "payments-1");
    assert.equal(impostor.opens.length, 0, "no call was opened on the impostor's stream");
    assert.ok(
      logs.some((l) => /refused .*payments-1.*registered by another principal/.test(l)),
      logs.join("\n"),
    );
    // The log names the id, never the token.
    assert.ok(!logs.join("\n").includes("attacker-token"));
  } finally {
    client.close();
    await victim.stop(0);
    await router.close(0);
  }
});

test("a library bridge that is refused as an impostor stops with the reason (PERMISSION_DENIED is final)", async () => {
  const { router, target } = await startRouter({ authorize: tokenAuthorizer({ tokens: ["victim-token", "attacker-token"] }) });
  const victim = await startBridge(target, "i-1", { credentialsHook: tokenCredentials("victim-token") });
  try {
    const impostor = await startBridge(target, "i-1", { credentialsHook: tokenCredentials("attacker-token") }).then(
      () => assert.fail("the impostor registered"),
      (e: Error) => e,
    );
    assert.match(impostor.message, /registered by another principal/);
    assert.equal(router.instances()[0]!.streams, 1);
  } finally {
    await victim.stop(0);
    await router.close(0);
  }
});

test("the owner comes back under its id at once (restart, extra streams); the id is free once it left", async () => {
  const { router, target } = await startRouter({ authorize: tokenAuthorizer({ tokens: ["owner", "other"] }) });
  const client = new TestClient(target);
  try {
    const first = await startBridge(target, "svc-1", { credentialsHook: tokenCredentials("owner") });
    // A second process of the same principal (a restart racing the old session) joins, never "in use".
    const second = await startBridge(target, "svc-1", { credentialsHook: tokenCredentials("owner"), streams: 2 });
    await waitFor("three streams", () => router.instances()[0]?.streams === 3);
    await first.stop(0);
    await second.stop(0);
    await waitFor("the instance to leave", () => router.instances().length === 0);
    // Once nobody holds it, the id may be taken by another principal (bind ids in the token
    // file or to certificate names to reserve them).
    const next = await startBridge(target, "svc-1", { credentialsHook: tokenCredentials("other") });
    assert.equal((await say(client)).res.instanceId, "svc-1");
    await next.stop(0);
  } finally {
    client.close();
    await router.close(0);
  }
});

test("token files bind tokens to instance ids and prefixes: a shared-token holder cannot take another fleet's ids", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-hijack-"));
  const file = path.join(dir, "tokens.txt");
  writeFileSync(file, "# each fleet its own ids\ninterop.v1.TestService edge-token instances=edge-*\n* core-token instances=core-1,core-2\n");
  const { router, target } = await startRouter({ authorize: tokenFileAuthorizer(file) });
  try {
    const edge = await startBridge(target, "edge-eu-1", { credentialsHook: tokenCredentials("edge-token") });
    const core = await startBridge(target, "core-2", { credentialsHook: tokenCredentials("core-token") });
    for (const [id, token] of [
      ["core-1", "edge-token"],
      ["edge-eu-2", "core-token"],
      ["core-3", "core-token"],
    ] as const) {
      const attacker = rawInstance(target, id, { credentials: { token } });
      const w = await attacker.welcome;
      assert.equal(w?.accepted, false, `${token} registering ${id}`);
      assert.match(w!.reason, new RegExp(`the token may not register instance id "${id}"`));
      attacker.close();
    }
    assert.deepEqual(
      router
        .instances()
        .map((i) => i.id)
        .sort(),
      ["core-2", "edge-eu-1"],
    );
    await edge.stop(0);
    await core.stop(0);
  } finally {
    await router.close(0);
    rmSync(dir, { recursive: true, force: true });
  }
});
