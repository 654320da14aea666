// What 10,000 instances on one router rely on, with a few real instances: a bridge dials
// from the local address it is given (hosts with several addresses; the bench spreads its
// instances over 127.1.x.y so per-address limits see what production would), and the
// router reports a service's serving state from a count (onServingChange), not by looking
// at every instance.
import assert from "node:assert/strict";
import { test } from "node:test";
import { startBridge, startRouter, waitFor } from "./helpers.js";

const SERVICE = "interop.v1.TestService";

test("BridgeOptions.localAddress: the router sees the instance at that address", async () => {
  const { router, target } = await startRouter();
  const bridge = await startBridge(target, "multi-homed", { localAddress: "127.0.0.9" });
  try {
    const [inst] = router.instances(SERVICE);
    assert.match(inst!.address, /^127\.0\.0\.9:\d+$/);
  } finally {
    await bridge.stop(0);
    await router.close(0);
  }
});

test("BridgeOptions.localAddress over WebSocket too: the router sees the instance at that address", async () => {
  const { router, target } = await startRouter();
  const bridge = await startBridge(target, "multi-homed-ws", { localAddress: "127.0.0.10", transport: "websocket" });
  try {
    const [inst] = router.instances(SERVICE);
    assert.match(inst!.address, /^127\.0\.0\.10:\d+$/);
  } finally {
    await bridge.stop(0);
    await router.close(0);
  }
});

test("onServingChange: told when the first instance takes calls and when the last stops (its report, its departure)", async () => {
  const changes: Array<[string, boolean]> = [];
  const { router, target } = await startRouter({ onServingChange: (s, serving) => changes.push([s, serving]) });
  const a = await startBridge(target, "a");
  const b = await startBridge(target, "b");
  try {
    await waitFor("both registered", () => router.instances(SERVICE).length === 2);
    assert.deepEqual(changes, [[SERVICE, true]], "once, for the first");
    a.setServing(false);
    b.setServing(false);
    await waitFor("NOT_SERVING reported", () => changes.length === 2);
    assert.deepEqual(changes[1], [SERVICE, false]);
    assert.equal(router.hasServingInstance(SERVICE), false);
    b.setServing(true);
    await waitFor("b back", () => changes.length === 3);
    assert.deepEqual(changes[2], [SERVICE, true]);
    await b.stop(0);
    await waitFor("b gone", () => changes.length === 4);
    assert.deepEqual(changes[3], [SERVICE, false], "a is still registered but NOT_SERVING");
    assert.equal(router.instances(SERVICE).length, 1);
  } finally {
    await a.stop(0);
    await b.stop(0);
    await router.close(0);
  }
});
