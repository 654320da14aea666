import { test } from "node:test";
import assert from "node:assert/strict";
import { create, createFileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { ResilienceConfigError, isIdempotent, resolveResilienceOptions, type AttemptResult } from "../../src/resilience/index.js";
import { OK, UNAVAILABLE, UNDELIVERED, pool, runCall, state } from "./helpers.js";

/** A real service descriptor whose methods declare each idempotency level. */
function ledger() {
  const file = create(FileDescriptorProtoSchema, {
    name: "ledger.proto",
    package: "ledger.v1",
    syntax: "proto3",
    messageType: [{ name: "Req" }, { name: "Res" }],
    service: [
      {
        name: "Ledger",
        method: [
          {
            name: "Get",
            inputType: ".ledger.v1.Req",
            outputType: ".ledger.v1.Res",
            options: { idempotencyLevel: MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS },
          },
          { name: "Put", inputType: ".ledger.v1.Req", outputType: ".ledger.v1.Res", options: { idempotencyLevel: MethodOptions_IdempotencyLevel.IDEMPOTENT } },
          { name: "Append", inputType: ".ledger.v1.Req", outputType: ".ledger.v1.Res" },
        ],
      },
    ],
  });
  return createFileRegistry(file, () => undefined).getService("ledger.v1.Ledger")!;
}

test("idempotency comes from the method descriptor's idempotency_level", () => {
  const s = ledger();
  assert.deepEqual(
    s.methods.map((m) => [m.name, isIdempotent(m)]),
    [
      ["Get", true],
      ["Put", true],
      ["Append", false],
    ],
  );
});

test("a call never delivered is retried on another instance, idempotent or not", async () => {
  const t = pool();
  for (const id of ["a", "b", "c"]) t.pool.add({ id });
  // a's stream is gone before the call could be opened on it.
  const r = await runCall(t.pool, t.clock, (id) => (id === "a" ? UNDELIVERED : OK), { idempotent: false });
  assert.deepEqual(r, { tried: ["a", "b"], code: 0 });
  // Every instance failing to take it: each tried once, then the call fails.
  const all = await runCall(t.pool, t.clock, () => UNDELIVERED);
  assert.deepEqual(new Set(all.tried).size, 3);
  assert.equal(all.code, 14);
  assert.equal(t.pool.budget.totals().retries, 0, "undelivered retries cost no budget");
});

test("UNAVAILABLE is retried only for idempotent methods, only before the response started", async () => {
  const [get, , append] = ledger().methods;
  const t = pool({ outlier: { consecutiveFailures: 0 } });
  for (const id of ["a", "b"]) t.pool.add({ id });
  // The first attempt of every call fails; any further attempt succeeds.
  const flaky = (_id: string, a: { number: number }, r: AttemptResult = UNAVAILABLE): AttemptResult => (a.number === 1 ? r : OK);

  const g = await runCall(t.pool, t.clock, flaky, { method: "/ledger.v1.Ledger/Get", idempotent: isIdempotent(get!) });
  assert.equal(g.code, 0);
  assert.equal(g.tried.length, 2);
  assert.notEqual(g.tried[0], g.tried[1], "retried on the other instance");
  const ap = await runCall(t.pool, t.clock, flaky, { method: "/ledger.v1.Ledger/Append", idempotent: isIdempotent(append!) });
  assert.deepEqual([ap.tried.length, ap.code], [1, 14], "Append might have happened: never retried");

  const committed = await runCall(t.pool, t.clock, (id, a) => flaky(id, a, { ...UNAVAILABLE, committed: true }), { idempotent: true });
  assert.equal(committed.tried.length, 1, "headers already went to the client");
  const stream = await runCall(t.pool, t.clock, (id, a) => flaky(id, a, { ...UNAVAILABLE, replayable: false }), { idempotent: true });
  assert.equal(stream.tried.length, 1, "the client stream was not buffered");
  const internal = await runCall(t.pool, t.clock, (id, a) => flaky(id, a, { code: 13, delivered: true }), { idempotent: true });
  assert.equal(internal.tried.length, 1, "INTERNAL is not retried by default");
  const always = await runCall(t.pool, t.clock, () => UNAVAILABLE, { idempotent: true });
  assert.equal(always.tried.length, 3, "maxAttempts 3");
});

test("retries back off exponentially with jitter, and never past the deadline", async () => {
  const t = pool({ random: () => 0.999, outlier: { consecutiveFailures: 0 }, retry: { maxAttempts: 5, initialBackoffMs: 100, maxBackoffMs: 300 } });
  t.pool.add({ id: "a" });
  const call = t.pool.call({ method: "/m", idempotent: true, deadline: t.clock.now() + 10_000 });
  const delays: number[] = [];
  let next = call.next();
  for (let i = 0; i < 4; i++) {
    const d = (await next).finish(UNAVAILABLE);
    assert.ok(d.retry, d.reason);
    assert.match(d.reason, new RegExp(`^UNAVAILABLE on an idempotent method: retry ${i + 1}$`));
    delays.push(d.delayMs);
    next = call.next();
    await t.clock.advance(d.delayMs - 1);
    assert.equal(await state(next), "pending", "the backoff is waited out");
    await t.clock.advance(1);
  }
  assert.deepEqual(delays, [99, 199, 299, 299]);
  assert.match((await next).finish(UNAVAILABLE).reason, /^UNAVAILABLE after 5 attempts \(maxAttempts 5\)$/);

  const short = t.pool.call({ method: "/m", idempotent: true, deadline: t.clock.now() + 50 });
  const d = (await short.next()).finish(UNAVAILABLE);
  assert.ok(d.retry);
  const late = short.next();
  late.catch(() => {});
  await t.clock.advance(50);
  await assert.rejects(late, (e: { code?: number }) => e.code === 4, "the backoff stops at the deadline");
});

test("an outage does not multiply into a retry storm: retries stay within 20 % of calls plus the floor", async () => {
  const t = pool({ outlier: { consecutiveFailures: 0 } });
  for (let i = 0; i < 5; i++) t.pool.add({ id: `i${i}` });
  let attempts = 0;
  let calls = 0;
  // 200 calls per second for 5 s (inside one 10 s budget window), every instance UNAVAILABLE.
  for (let s = 0; s < 10; s++) {
    for (let i = 0; i < 100; i++) {
      calls++;
      await runCall(t.pool, t.clock, () => (attempts++, UNAVAILABLE), { idempotent: true });
    }
    await t.clock.advance(500);
  }
  const retries = attempts - calls;
  // Without a budget: 3 attempts per call = 2000 retries. With it: ≤ 20 % of 1000 + 1/s × 10 s.
  assert.ok(retries <= 0.2 * calls + 10, `${retries} retries for ${calls} calls`);
  assert.ok(retries >= 0.2 * calls - 20, `the budget should still allow its share (${retries})`);

  // A long outage (a minute more): the ratio holds over every window, so over the whole too.
  for (let s = 0; s < 60; s++) {
    for (let i = 0; i < 50; i++) {
      calls++;
      await runCall(t.pool, t.clock, () => (attempts++, UNAVAILABLE), { idempotent: true });
    }
    await t.clock.advance(1000);
  }
  const ratio = (attempts - calls) / calls;
  assert.ok(ratio <= 0.22 + 10 / 50 / 10, `long outage: ${attempts - calls} retries for ${calls} calls`);

  // The outage ends and the window slides: a later failure may be retried again.
  await t.clock.advance(10_000);
  let n = 0;
  const r = await runCall(t.pool, t.clock, () => (n++ === 0 ? UNAVAILABLE : OK), { idempotent: true });
  assert.equal(r.tried.length, 2);
});

test("bad options name the field", () => {
  assert.throws(
    () => resolveResilienceOptions({ retry: { maxAttempts: 0 } }),
    (e: unknown) => e instanceof ResilienceConfigError && e.message === "resilience.retry.maxAttempts: must be an integer 1..10, got 0",
  );
  assert.throws(
    () => resolveResilienceOptions({ outlier: { failureCodes: [14, 99] } }, "services.Echo.resilience"),
    /^ResilienceConfigError: services\.Echo\.resilience\.outlier\.failureCodes\[1\]: must be an integer 1\.\.16, got 99$/,
  );
  assert.throws(() => resolveResilienceOptions({ retry: { budget: { ratio: -1 } } }), /resilience\.retry\.budget\.ratio: must be a number 0\.\.1000, got -1/);
  assert.deepEqual(resolveResilienceOptions({ waitForReady: false }).waitForReady, { enabled: false, maxWaitMs: 10_000, maxWaiting: 1000 });
});

test("RetryPolicy alone: per-call counters for a router with its own dispatch", async () => {
  const { RetryPolicy, ManualClock } = await import("../../src/resilience/index.js");
  const policy = new RetryPolicy(resolveResilienceOptions({}).retry, new ManualClock(), () => 0);
  const r = policy.start(false);
  assert.deepEqual(r.after(UNDELIVERED), { retry: true, delayMs: 0, reason: "never delivered to the instance: retrying on another" });
  assert.equal(r.after(UNAVAILABLE).reason, "UNAVAILABLE on a method that is not idempotent (idempotency_level)");
  const idem = policy.start(true);
  assert.ok(idem.after(UNAVAILABLE).retry);
  assert.ok(idem.after(UNAVAILABLE).retry);
  assert.equal(idem.after(UNAVAILABLE).reason, "UNAVAILABLE after 3 attempts (maxAttempts 3)");
  assert.equal(idem.attempts, 3);
  assert.equal(policy.start(true).after({ ...UNAVAILABLE, finished: true }).reason, "the call is over (cancelled or past its deadline)");
});
