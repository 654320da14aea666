// The dashboard's live charts in Debian's chromium, over a real router with three bridged
// instances: one answers quickly, one slowly, one fails every call. The page must show the
// slow one's p99 and the failing one's errors, and mark both, from the router's per-second
// statistics (no fixed waits: each check waits for its condition).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Browser, Page } from "playwright-core";
import { AdminHub, startDashboard, type Dashboard } from "../../src/admin/index.js";
import { createBridge, type Bridge, type Router } from "../../src/tunnel/index.js";
import { SimpleRequestSchema, SimpleResponseSchema } from "../tunnel/gen/interop/v1/test_pb.js";
import { TestClient, TestTunnel, interopImpl, methodOf, quietLog, startRouter, waitFor } from "../tunnel/helpers.js";
import { launchChromium, openDashboard, untilShown, shot } from "./fixtures/chromium.js";

// Far above what a loaded 2-core machine adds to the quick instance's calls.
const SLOW_MS = 400;

describe("live charts of a real router in chromium", { timeout: 180_000 }, () => {
  let hub: AdminHub;
  let router: Router;
  let dashboard: Dashboard;
  let browser: Browser;
  let page: Page;
  let client: TestClient;
  const bridges: Bridge[] = [];
  const pageErrors: string[] = [];
  let traffic = true;
  let load: Promise<void> | undefined;

  before(async () => {
    hub = new AdminHub();
    const started = await startRouter({ hub, services: [{ tunnel: TestTunnel }] });
    router = started.router;
    const add = async (id: string, unaryCall: (typeof base)["unaryCall"]) => {
      const b = createBridge(TestTunnel, { ...interopImpl(id), unaryCall }, { router: started.target, instanceId: id, logger: quietLog() });
      bridges.push(b);
      await b.start();
    };
    const base = interopImpl("x");
    const answer = (id: string) => create(SimpleResponseSchema, { instanceId: id });
    await add("fast", async () => answer("fast"));
    await add("slow", async () => (await new Promise((r) => setTimeout(r, SLOW_MS)), answer("slow")));
    await add("failing", async () => {
      throw new ConnectError("the database is gone", Code.Internal);
    });
    await waitFor("three instances", () => router.stats().streams.length === 3);
    client = new TestClient(started.target);
    // Calls in the background until the test is done: 8 at a time, bounded by the test's end.
    load = Promise.all(
      Array.from({ length: 8 }, async () => {
        while (traffic) await client.unary(methodOf("UnaryCall"), SimpleRequestSchema, SimpleResponseSchema, create(SimpleRequestSchema, {})).catch(() => {});
      }),
    ).then(() => {});
    dashboard = await startDashboard({ hub });
    browser = await launchChromium();
    page = await openDashboard(browser, dashboard.url, { width: 1400, height: 1000 }, pageErrors);
  });

  after(async () => {
    traffic = false;
    await load;
    client?.close();
    await browser?.close();
    await dashboard?.close();
    await Promise.all(bridges.map((b) => b.stop(0)));
    await router?.close(0);
    hub?.close();
  });

  it("charts the service and gives each instance a tile; the slow and the failing ones stand out", async () => {
    await page.locator('#charts .chart-service[data-service="interop.v1.TestService"] canvas').first().waitFor();
    const tile = (id: string) => page.locator(`#charts .chart-tile[data-instance="${id}"]`);
    for (const id of ["fast", "slow", "failing"]) await tile(id).waitFor();
    // p99 of the slow instance: its handler sleeps SLOW_MS (the histogram is ±12 %).
    const attr = async (id: string, name: string) => Number(await tile(id).getAttribute(name));
    const outlier = (id: string) => tile(id).evaluate((e) => e.classList.contains("outlier"));
    await untilShown("the slow instance's p99", async () => (await attr("slow", "data-p99-ms")) >= SLOW_MS * 0.85);
    await untilShown("the failing instance's errors", async () => (await attr("failing", "data-error-rate")) === 1);
    await untilShown("both marked", async () => (await outlier("slow")) && (await outlier("failing")));
    assert.equal(await tile("fast").evaluate((e) => e.classList.contains("outlier")), false, "the healthy, quick instance does not stand out");
    assert.equal(Number(await tile("fast").getAttribute("data-error-rate")), 0);
    assert.ok(Number(await tile("fast").getAttribute("data-p99-ms")) < Number(await tile("slow").getAttribute("data-p99-ms")));
    // Five failures in a row eject it (resilience): it then gets no calls, and its tile keeps
    // the numbers of its last busy seconds.
    assert.match(await tile("failing").innerText(), /failing · .*100 % err/);
    assert.match(await page.locator("#charts .chart-service h3").innerText(), /interop\.v1\.TestService · [\d.]+ req\/s · p99 .* · [\d.]+ % errors/);
    await page.screenshot({ path: shot("dashboard-charts.png") });
  });

  it("draws the topology with live rates and marks the ejected instance", async () => {
    const node = (id: string) => page.locator(`#topology .topo-instance[data-instance="${id}"]`);
    // Five failures in a row eject the failing instance; the others keep serving.
    await untilShown("the failing instance ejected", async () => (await node("failing").getAttribute("data-health")) === "ejected");
    assert.equal(await node("fast").getAttribute("data-health"), "serving");
    await untilShown("the fast instance's rate on its edge", async () => Number(await node("fast").getAttribute("data-rps")) > 0);
    assert.match(
      await node("failing")
        .innerText()
        .catch(() => node("failing").textContent().then(String)),
      /failing \(ejected\)/,
    );
    assert.ok(Number(await page.locator("#topology svg > line.topo-edge").getAttribute("data-rps")) > 0, "clients → router carries the calls");
    await page.locator("#topology").screenshot({ path: shot("dashboard-topology.png") });
  });

  it("a page opened later draws the history at once from the snapshot", async () => {
    const second = await browser.newPage({ viewport: { width: 1200, height: 800 } });
    second.on("pageerror", (e) => pageErrors.push(String(e)));
    await second.goto(dashboard.url);
    await second.locator('#charts .chart-tile[data-instance="slow"]').waitFor();
    const p99 = Number(await second.locator('#charts .chart-tile[data-instance="slow"]').getAttribute("data-p99-ms"));
    assert.ok(p99 >= SLOW_MS * 0.85, `history p99 ${p99}`);
    await second.close();
    assert.deepEqual(pageErrors, []);
  });
});
