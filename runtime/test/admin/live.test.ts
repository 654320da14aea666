// What the dashboard says to screen readers (ui/live.js): a burst of calls is one sentence,
// not one per call; failures go to the assertive region; nothing is held back for good.
import assert from "node:assert/strict";
import { it } from "node:test";
// @ts-expect-error: a plain browser module without types
import { Announcer } from "../../src/admin/ui/live.js";

type Region = { textContent: string };
type Speaker = { callStarted(): void; callFailed(what: string): void; instance(what: string): void; flush(now?: number): void };

it("speaks a burst of calls as one sentence per interval, failures assertively", async () => {
  const polite: Region = { textContent: "" };
  const alert: Region = { textContent: "" };
  const a = new (Announcer as new (p: Region, e: Region, ms: number) => Speaker)(polite, alert, 50);
  a.instance("instance a of x.Y registered");
  a.callStarted();
  a.flush(0);
  assert.equal(polite.textContent, "instance a of x.Y registered. 1 new call");
  // 1,000 calls within the interval, 10 of them failing: nothing new is said yet about calls…
  for (let i = 0; i < 1000; i++) {
    a.callStarted();
    if (i % 100 === 0) a.callFailed(`/x.Y/Z UNAVAILABLE #${i}`);
    a.flush(10);
  }
  assert.equal(polite.textContent, "instance a of x.Y registered. 1 new call");
  // …failures are said at once, as one sentence.
  assert.equal(alert.textContent, "Call failed: /x.Y/Z UNAVAILABLE #0");
  a.flush(60);
  assert.equal(polite.textContent, "1000 new calls");
  assert.equal(alert.textContent, "9 calls failed, the last: /x.Y/Z UNAVAILABLE #900");
  // The last news of a burst is spoken by a timer, without another render.
  a.callStarted();
  a.flush(70);
  assert.equal(polite.textContent, "1000 new calls");
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(polite.textContent, "1 new call");
});
