// When the server compiles after edits: a lone edit at once, a burst of edits once at its end.
// The clock that tells a burst from a lone edit is the test's; the timers are real.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CompileScheduler } from "../src/compile-scheduler.js";

function until(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = () => {
      if (check()) return resolve();
      if (Date.now() - started > timeoutMs) return reject(new Error(`timed out waiting for ${what}`));
      setImmediate(poll);
    };
    poll();
  });
}

describe("compile scheduler", () => {
  it("compiles a lone edit without waiting for more, and a burst once, after its last edit", async () => {
    let clock = 0;
    let runs = 0;
    // A long burst window: a lone edit that waited for it would not run within the first await.
    const s = new CompileScheduler(
      () => runs++,
      60_000,
      () => clock,
    );

    clock = 100_000;
    s.edited();
    await until("the lone edit's compile", () => runs === 1, 5_000);

    // Three edits closer together than the window: nothing runs while they come.
    const burst = new CompileScheduler(
      () => runs++,
      200,
      () => clock,
    );
    runs = 0;
    clock = 0;
    burst.edited(); // quiet before: armed at once…
    clock = 10;
    burst.edited(); // …but the next edit joins it into a burst
    clock = 20;
    burst.edited();
    await until("the burst's compile", () => runs >= 1);
    assert.equal(runs, 1, "a burst of three edits compiles once");

    // After the burst, a save asks for a compile now.
    burst.soon();
    await until("the compile of the save", () => runs === 2);
    s.cancel();
    burst.cancel();
  });

  it("cancel drops a compile that was waiting", async () => {
    let runs = 0;
    let clock = 0;
    const s = new CompileScheduler(
      () => runs++,
      100,
      () => clock,
    );
    s.edited();
    clock = 1;
    s.edited();
    s.cancel();
    // A second scheduler's compile, armed after the cancelled one's deadline, runs first or
    // alone: when it has run, the cancelled one would have too.
    let other = 0;
    const later = new CompileScheduler(
      () => other++,
      100,
      () => clock,
    );
    later.edited();
    clock = 2;
    later.edited();
    await until("the other compile", () => other === 1);
    assert.equal(runs, 0);
  });
});
