// The pacer that spreads a burst of new connections over event-loop turns (turn-pacer.ts):
// what reaches the router at once (10,000 instances reconnecting) must not hold every other
// answer for the whole burst.
import assert from "node:assert/strict";
import { test } from "node:test";
import { TurnPacer } from "../../src/tunnel/http2/turn-pacer.js";

/** How many tasks had run after each turn, until all did (a probe queued after the pacer's turn). */
async function countsPerTurn(pacer: TurnPacer, ran: () => number, total: number): Promise<number[]> {
  const counts: number[] = [];
  while (ran() < total) {
    await new Promise((r) => setImmediate(r));
    counts.push(ran());
    if (counts.length > total + 10) throw new Error(`stuck at ${ran()} of ${total} (${pacer.waiting} waiting)`);
  }
  return counts;
}

/** Keeps the thread busy for `ms` (a task's own work, or work it leaves for after it returns). */
function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

test("a burst runs at most perTurn tasks per turn, in order", async () => {
  const pacer = new TurnPacer(64, 60_000);
  const order: number[] = [];
  for (let i = 0; i < 200; i++) pacer.run(() => order.push(i));
  assert.equal(order.length, 0, "nothing runs in the turn that queued it");
  assert.equal(pacer.waiting, 200);
  const counts = await countsPerTurn(pacer, () => order.length, 200);
  assert.deepEqual(counts, [64, 128, 192, 200]);
  assert.deepEqual(order, [...Array(200).keys()]);
  assert.equal(pacer.waiting, 0);
});

test("a turn stops at its time budget: a slow task leaves the rest for the next turn", async () => {
  const pacer = new TurnPacer(64, 0, 60_000);
  let ran = 0;
  for (let i = 0; i < 5; i++) pacer.run(() => ran++);
  assert.deepEqual(await countsPerTurn(pacer, () => ran, 5), [1, 2, 3, 4, 5]);
});

test("turns that run long (work a task leaves for after it returns) start fewer tasks, down to 8", async () => {
  const pacer = new TurnPacer(64, 5, 60_000);
  let ran = 0;
  // Each task returns at once but leaves 2 ms of work to a nextTick (as a new HTTP/2 session
  // does): the turns take ≥ 16 ms, over twice the budget, however fast the machine.
  for (let i = 0; i < 200; i++)
    pacer.run(() => {
      ran++;
      process.nextTick(busy, 2);
    });
  const counts = await countsPerTurn(pacer, () => ran, 200);
  const perTurn = counts.map((c, i) => c - (counts[i - 1] ?? 0));
  assert.deepEqual(perTurn.slice(0, 4), [64, 32, 16, 8]);
  assert.ok(
    perTurn.slice(4, -1).every((n) => n === 8),
    `8 per turn from then on: ${perTurn}`,
  );
});

test("tasks that waited longer than maxWaitMs get turns of perTurn, however long turns take", async () => {
  const pacer = new TurnPacer(64, 5, 0);
  let ran = 0;
  for (let i = 0; i < 200; i++)
    pacer.run(() => {
      ran++;
      busy(1); // over the budget after 5: only overdue tasks go on
      process.nextTick(busy, 1);
    });
  assert.deepEqual(await countsPerTurn(pacer, () => ran, 200), [64, 128, 192, 200]);
});

test("a task that throws does not stop the others, and tasks queued by tasks wait for a later turn", async () => {
  const pacer = new TurnPacer(64, 60_000);
  const done: string[] = [];
  pacer.run(() => {
    throw new Error("one connection's problem");
  });
  pacer.run(() => {
    done.push("second");
    pacer.run(() => done.push("queued by the second"));
  });
  assert.deepEqual(await countsPerTurn(pacer, () => done.length, 2), [1, 2]);
  assert.deepEqual(done, ["second", "queued by the second"]);
});
