// The live charts' time axis in Debian's chromium, read from what the page drew: with one,
// two and five seconds of statistics (a service whose first call just ended) as with minutes
// of them (a service with history), the tick labels are whole, distinct clock times in
// order, never fractions of a second nor one second written twice.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Browser, Page } from "playwright-core";
import { AdminHub, startDashboard, type Dashboard } from "../../src/admin/index.js";
import { launchChromium, openDashboard, untilShown } from "./fixtures/chromium.js";

/** What the page drew: a chart's number of seconds and its x tick labels, at every draw. */
interface Drawn {
  service: string;
  title: string;
  points: number;
  ticks: string[];
}

const LIVE = "demo.v1.Live";
const PAST = "demo.v1.Past";
/** Seconds of history the PAST service has when the page opens. */
const HISTORY_S = 150;

describe("live charts' time axis in chromium", { timeout: 180_000 }, () => {
  let hub: AdminHub;
  let dashboard: Dashboard;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];
  let nextId = 1;

  /** One call of `service` that ended at `endMs` (its statistics count it in that second). */
  function call(service: string, endMs: number): void {
    const callId = nextId++;
    hub.publish({ type: "callStarted", callId, method: `/${service}/Say`, instanceId: "a", time: new Date(endMs - 5) });
    hub.publish({ type: "callEnded", callId, code: 0, time: new Date(endMs) });
  }

  before(async () => {
    hub = new AdminHub();
    hub.setServices([
      { name: LIVE, methods: ["Say"] },
      { name: PAST, methods: ["Say"] },
    ]);
    call(PAST, Date.now() - HISTORY_S * 1000);
    dashboard = await startDashboard({ hub });
    browser = await launchChromium();
    page = await openDashboard(browser, dashboard.url, { width: 1400, height: 1000 }, pageErrors);
    // Every draw of every chart, recorded in the page as it happens (the charts redraw once a
    // second; a poll from here could miss one).
    await page.evaluate(() => {
      const g = globalThis as unknown as {
        drawn: Drawn[];
        document: { getElementById(id: string): unknown };
        MutationObserver: new (cb: (records: { target: unknown }[]) => void) => { observe(node: unknown, options: object): void };
      };
      g.drawn = [];
      new g.MutationObserver((records) => {
        for (const r of records) {
          const el = r.target as {
            dataset: Record<string, string>;
            closest(s: string): { dataset: Record<string, string> } | null;
            querySelector(s: string): { textContent: string } | null;
          };
          if (el.dataset.xTicks === undefined || el.dataset.points === undefined) continue;
          g.drawn.push({
            service: el.closest(".chart-service")?.dataset.service ?? "",
            title: el.querySelector(".u-title")?.textContent ?? "",
            points: Number(el.dataset.points),
            ticks: JSON.parse(el.dataset.xTicks),
          });
        }
      }).observe(g.document.getElementById("charts"), { subtree: true, attributes: true, attributeFilter: ["data-points", "data-x-ticks"] });
    });
    call(LIVE, Date.now());
  });

  after(async () => {
    await browser?.close();
    await dashboard?.close();
    hub?.close();
  });

  const drawn = (): Promise<Drawn[]> => page.evaluate(() => (globalThis as unknown as { drawn: Drawn[] }).drawn);

  /** The clock labels the chart should write: "HH:MM:SS", or "HH:MM" when the ticks are minutes apart. */
  function assertSensible(d: Drawn): void {
    const at = `${d.service} ${d.title || "instance tile"} with ${d.points} point(s): ${JSON.stringify(d.ticks)}`;
    // A service's chart is wide enough for two labels; an instance's small tile for one.
    assert.ok(d.ticks.length >= (d.title ? 2 : 1), `${at}: labels say when`);
    for (const t of d.ticks) assert.match(t, /^\d\d:\d\d(:\d\d)?$/, `${at}: a whole clock time`);
    assert.equal(new Set(d.ticks).size, d.ticks.length, `${at}: no label twice`);
    const seconds = d.ticks.map((t) => t.split(":").reduce((s, part) => s * 60 + Number(part), 0) * (t.length === 5 ? 60 : 1));
    // Later to the right (past midnight, the clock starts over).
    for (let i = 1; i < seconds.length; i++) assert.ok(seconds[i]! > seconds[i - 1]! || seconds[i - 1]! - seconds[i]! > 12 * 3600, `${at}: in order`);
  }

  it("labels one, two and five seconds, and minutes of them, with whole distinct clock times", async () => {
    await untilShown("five seconds of the live service drawn", async () => (await drawn()).some((d) => d.service === LIVE && d.points >= 5));
    await untilShown("the service with history drawn", async () => (await drawn()).some((d) => d.service === PAST && d.points >= HISTORY_S));
    const all = await drawn();
    for (const n of [1, 2, 5]) {
      const at = all.filter((d) => d.service === LIVE && d.points === n);
      assert.ok(
        at.length > 0,
        `the live service was drawn with ${n} point(s); drawn: ${JSON.stringify([...new Set(all.filter((d) => d.service === LIVE).map((d) => d.points))])}`,
      );
      for (const d of at) assertSensible(d);
    }
    const past = all.filter((d) => d.service === PAST && d.points >= HISTORY_S);
    for (const d of past) assertSensible(d);
    // Minutes of seconds: the labels are spaced further apart than a second.
    assert.ok(
      past.every((d) => d.ticks.length <= 12),
      `the long chart keeps its labels readable: ${JSON.stringify(past[0]?.ticks)}`,
    );
    assert.deepEqual(pageErrors, []);
  });
});
