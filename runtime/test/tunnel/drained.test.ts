import { test } from "node:test";
import assert from "node:assert/strict";
import { ManualClock } from "../../src/resilience/index.js";
import { DrainingSet, waitDrained } from "../../src/tunnel/drained.js";

/** Whether `p` has settled once queued callbacks have run. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true));
  await new Promise((r) => setImmediate(r));
  return done;
}

test("a drain resolves when the last member leaves, not before, and leaves no timer behind", async () => {
  const clock = new ManualClock();
  const calls = new DrainingSet(["a", "b"]);
  const wait = calls.drained.wait(() => calls.size === 0, 5000, clock);
  calls.delete("a");
  assert.equal(await settled(wait), false, "one call is still in flight");
  calls.delete("nobody");
  assert.equal(await settled(wait), false);
  calls.delete("b");
  assert.equal(await wait, true);
  assert.equal(clock.pending, 0, "the grace timer is cleared once drained");
});

test("a drain gives up at its grace deadline on the clock it was given, and says it did not drain", async () => {
  const clock = new ManualClock();
  const calls = new DrainingSet(["stuck"]);
  const wait = calls.drained.wait(() => calls.size === 0, 5000, clock);
  await clock.advance(4999);
  assert.equal(await settled(wait), false, "the grace has not run out");
  await clock.advance(1);
  assert.equal(await wait, false);
  calls.delete("stuck"); // a late end wakes no one and throws nothing
});

test("a drain already done, or with no grace, answers at once; one over several sets waits for all", async () => {
  const clock = new ManualClock();
  assert.equal(await new DrainingSet().drained.wait(() => true, 5000, clock), true);
  const busy = new DrainingSet([1]);
  assert.equal(await busy.drained.wait(() => busy.size === 0, 0, clock), false);
  assert.equal(clock.pending, 0);

  const sessions = new DrainingSet([1]);
  const sockets = new DrainingSet([2]);
  const both = waitDrained([sessions.drained, sockets.drained], () => sessions.size === 0 && sockets.size === 0, 1000, clock);
  sessions.clear();
  assert.equal(await settled(both), false, "a socket is still open");
  sockets.delete(2);
  assert.equal(await both, true);
});
