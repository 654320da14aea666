// What a bridge does when a router that welcomed it refuses it later: a token removed from
// the router's token file takes effect on the bridge's next registration (here: the router
// restarts), and the refusal is final — the bridge stops and `stopped` rejects with the
// reason instead of retrying forever. Reasons that may pass (a router shutting down, an
// authorize hook that throws) are retried.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { BridgeRefusedError, createBridge, type HelloInfo } from "../../src/tunnel/index.js";
import { tokenCredentials, tokenFileAuthorizer } from "../../src/auth/index.js";
import { create } from "@bufbuild/protobuf";
import { SimpleRequestSchema, SimpleResponseSchema } from "../tunnel/gen/interop/v1/test_pb.js";
import { TestClient, TestTunnel, interopImpl, methodOf, quietLog, startBridge, startRouter, waitFor } from "../tunnel/helpers.js";

describe("a refusal after a welcome", { timeout: 120_000 }, () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-revoke-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("stops the bridge with the router's reason once its token was removed from the token file", async () => {
    const file = path.join(dir, "tokens.txt");
    writeFileSync(file, "keep-token\nrevoked-token\n");
    // Every Hello the routers see, by instance: a retry would be counted here.
    const hellos = new Map<string, number>();
    const authorize = (hello: HelloInfo) => {
      hellos.set(hello.instanceId, (hellos.get(hello.instanceId) ?? 0) + 1);
      if (hello.instanceId === "canary") throw new Error("identity service unreachable");
      return tokenFileAuthorizer(file)(hello);
    };
    const first = await startRouter({ authorize });
    const bridgeLogs: string[] = [];
    const bridge = await startBridge(first.target, "revoked", { credentialsHook: tokenCredentials("revoked-token"), logger: quietLog(bridgeLogs) });
    let second: Awaited<ReturnType<typeof startRouter>> | undefined;
    try {
      const client = new TestClient(first.target);
      const { res } = await client.unary(methodOf("UnaryCall"), SimpleRequestSchema, SimpleResponseSchema, create(SimpleRequestSchema, {}));
      assert.equal(res.instanceId, "revoked");
      client.close();
      let settled: "resolved" | Error | undefined;
      bridge.stopped.then(
        () => (settled = "resolved"),
        (e: Error) => (settled = e),
      );

      writeFileSync(file, "keep-token\n");
      // The router restarts on the same port: the bridge registers anew and is refused.
      await first.router.close(100);
      hellos.clear();
      second = await startRouter({ authorize }, `127.0.0.1:${first.port}`);
      await waitFor("the bridge to stop", () => settled !== undefined, 30_000);
      assert.ok(settled instanceof BridgeRefusedError, String(settled));
      assert.equal(settled.reason, "not authorized: the token is not valid for interop.v1.TestService");
      assert.equal(
        settled.message,
        `router ${first.target} refused instance revoked of interop.v1.TestService: not authorized: the token is not valid for interop.v1.TestService`,
      );
      assert.ok(
        bridgeLogs.some((l) => /refused registration: not authorized.*stopping \(a refusal is final/.test(l)),
        bridgeLogs.join("\n"),
      );

      // Stopped for good. The proof is a canary with the same 50 ms backoff whose hook fails
      // (a refusal that IS retried): by the time it has been turned away four times, a
      // retrying bridge would have said Hello again too.
      const canary = createBridge(TestTunnel, interopImpl("canary"), {
        router: second.target,
        instanceId: "canary",
        logger: quietLog(),
        backoff: { initialMs: 50, maxMs: 500 },
      });
      canary.start().catch(() => {});
      try {
        await waitFor("the canary to be retried", () => (hellos.get("canary") ?? 0) >= 4, 30_000);
      } finally {
        await canary.stop(0);
      }
      assert.equal(hellos.get("revoked"), 1, "the refused bridge said Hello once");
      const refusals = second.logs.filter((l) => /refused instance "revoked"/.test(l));
      assert.equal(refusals.length, 1, second.logs.join("\n"));
      assert.deepEqual(second.router.instances(), []);
      await bridge.stop(0); // a no-op now, and it returns
    } finally {
      await bridge.stop(0);
      await second?.router.close(100);
      await first.router.close(100);
    }
  });

  it("retries an authorize hook that throws, and registers once it works again", async () => {
    let down = true;
    const { router, target, logs } = await startRouter({
      authorize: () => {
        if (down) throw new Error("identity service unreachable");
        return undefined;
      },
    });
    const bridgeLogs: string[] = [];
    const bridge = createBridge(TestTunnel, interopImpl("patient"), {
      router: target,
      instanceId: "patient",
      logger: quietLog(bridgeLogs),
      backoff: { initialMs: 50, maxMs: 200 },
    });
    let outcome: string | undefined;
    bridge.start().then(
      () => (outcome = "registered"),
      (e: Error) => (outcome = e.message),
    );
    bridge.stopped.then(
      () => (outcome ??= "stopped"),
      (e: Error) => (outcome ??= `stopped: ${e.message}`),
    );
    try {
      await waitFor(
        "two failed attempts",
        () => logs.filter((l) => /turned away instance "patient".*authorization failed: identity service unreachable \(it will retry\)/.test(l)).length >= 2,
        30_000,
      );
      assert.equal(outcome, undefined, "neither registered nor stopped while the hook fails");
      assert.ok(
        bridgeLogs.some((l) => /lost \(UNAVAILABLE: grpcrouter: authorization failed: identity service unreachable\); reconnecting/.test(l)),
        bridgeLogs.join("\n"),
      );
      down = false;
      await waitFor("the bridge to register", () => outcome !== undefined, 30_000);
      assert.equal(outcome, "registered");
      assert.deepEqual(
        router.instances().map((i) => i.id),
        ["patient"],
      );
    } finally {
      await bridge.stop(0);
      await router.close(100);
    }
  });
});
