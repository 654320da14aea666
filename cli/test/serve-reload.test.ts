// serve's one reload helper for protos and --config (serve-reload.ts): edits in a burst make
// one reload; an edit during a reload makes exactly one more after it; close() waits for a
// running reload and cancels a scheduled one. Real timers, conditions waited for.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { debouncedReloader, isMountSwap } from "../src/commands/serve-reload.js";

async function until(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("debouncedReloader", () => {
  it("runs once for a burst of edits", async () => {
    let runs = 0;
    const r = debouncedReloader(
      async () => void runs++,
      (e) => assert.fail(String(e)),
      30,
    );
    for (let i = 0; i < 10; i++) r.schedule();
    await until("the reload", () => runs === 1);
    await r.close();
    assert.equal(runs, 1);
  });

  it("never runs two reloads at once: an edit during one runs it once more, after", async () => {
    let running = 0;
    let most = 0;
    let runs = 0;
    let release!: () => void;
    const r = debouncedReloader(
      async () => {
        running++;
        most = Math.max(most, running);
        runs++;
        if (runs === 1) await new Promise<void>((resolve) => (release = resolve));
        running--;
      },
      (e) => assert.fail(String(e)),
      10,
    );
    r.schedule();
    await until("the first reload to start", () => runs === 1);
    r.schedule();
    r.schedule();
    await new Promise((res) => setTimeout(res, 50));
    assert.equal(runs, 1, "the second waits for the first");
    release();
    await until("the reload after it", () => runs === 2);
    await r.close();
    assert.equal(most, 1);
    assert.equal(runs, 2);
  });

  it("reports a failing reload and keeps working; close() cancels a scheduled one and waits for a running one", async () => {
    const errors: string[] = [];
    let runs = 0;
    let finished = false;
    const r = debouncedReloader(
      async () => {
        runs++;
        if (runs === 1) throw new Error("bad edit");
        await new Promise((res) => setTimeout(res, 30));
        finished = true;
      },
      (e) => errors.push((e as Error).message),
      10,
    );
    r.schedule();
    await until("the failure", () => errors.length === 1);
    assert.deepEqual(errors, ["bad edit"]);
    r.schedule();
    await until("the second reload to start", () => runs === 2);
    await r.close();
    assert.equal(finished, true, "close waited for the running reload");
    r.schedule();
    await new Promise((res) => setTimeout(res, 50));
    assert.equal(runs, 2, "nothing runs after close");
  });
});

describe("isMountSwap", () => {
  it("tells a Kubernetes volume's ..data swap from ordinary files", () => {
    assert.equal(isMountSwap("..data"), true);
    assert.equal(isMountSwap("..data_tmp"), true);
    assert.equal(isMountSwap("..2026_12_06_00_00_01.000000000"), true);
    assert.equal(isMountSwap("router.json"), false);
    assert.equal(isMountSwap("demo/v1/echo.proto"), false);
  });
});
