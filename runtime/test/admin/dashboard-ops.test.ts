// The dashboard's "why", views, operator actions and replay in Debian's chromium, over a real
// router with bridged instances under load: one quick, one made slow, one made to fail (its
// Gets are retried elsewhere, its Puts fail). Every check waits for its condition; where
// calls go is counted at the instances themselves. Each test saves a picture of its view in
// test-results/.
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import type { Browser, Page } from "playwright-core";
import { ActionKind, AdminHub, describeFromRegistry, startDashboard, type Dashboard } from "../../src/admin/index.js";
import { ActionRequestSchema } from "../../src/gen/grpcrouter/v1/admin_pb.js";
import type { AuditEvent } from "../../src/log/audit.js";
import { createBridge, type Bridge, type Router } from "../../src/tunnel/index.js";
import {
  SimpleRequestSchema,
  SimpleResponseSchema,
  StreamingInputCallRequestSchema,
  StreamingInputCallResponseSchema,
} from "../tunnel/gen/interop/v1/test_pb.js";
import { TestClient, quietLog, startRouter, waitFor } from "../tunnel/helpers.js";
import { launchChromium, openDashboard, shot } from "./fixtures/chromium.js";
import { STORE, StoreTunnel, newProbe, storeImpl, storeMethod, storeRegistry, total, type StoreProbe } from "./fixtures/ops-store.js";

// Far above what a loaded 2-core machine adds to the quick instance's calls.
const SLOW_MS = 300;

describe("why, views, actions and replay in the dashboard (chromium, real router)", { timeout: 300_000 }, () => {
  let hub: AdminHub;
  let router: Router;
  let dashboard: Dashboard;
  let browser: Browser;
  let page: Page;
  let viewer: Page;
  let client: TestClient;
  const bridges: Bridge[] = [];
  const probes: Record<string, StoreProbe> = {};
  const audit: AuditEvent[] = [];
  const pageErrors: string[] = [];
  let firstFailedId: string | undefined;
  let traffic = true;
  let load: Promise<void> | undefined;

  before(async () => {
    hub = new AdminHub({ describe: describeFromRegistry(storeRegistry) });
    // The first call the router failed, as the hub saw it: the errors view must point at it.
    hub.onEvent((e) => {
      if (e.type === "callEnded" && e.code !== 0 && firstFailedId === undefined) firstFailedId = String(e.callId);
    });
    const started = await startRouter({
      hub,
      services: [{ tunnel: StoreTunnel }],
      audit: (e) => audit.push(e),
      // A short ejection, so the failing instance keeps coming back, failing and being retried.
      resilience: { retry: { budget: { minRetriesPerSecond: 100 } }, outlier: { consecutiveFailures: 3, baseEjectionMs: 1000, maxEjectionMs: 2000 } },
    });
    router = started.router;
    for (const [id, mode] of [
      ["fast", "fast"],
      ["slow", "slow"],
      ["failing", "failing"],
    ] as const) {
      probes[id] = newProbe();
      const b = createBridge(StoreTunnel, storeImpl(id, mode, probes[id]!, SLOW_MS), { router: started.target, instanceId: id, logger: quietLog() });
      bridges.push(b);
      await b.start();
    }
    await waitFor("three instances", () => router.instances().length === 3);
    dashboard = await startDashboard({ hub });
    browser = await launchChromium();
    page = await openDashboard(browser, dashboard.url, { width: 1500, height: 1100 }, pageErrors);
    viewer = await openDashboard(browser, dashboard.url, { width: 1500, height: 1100 }, pageErrors);
    // The page watches from before the first call, so it has seen the first failure.
    client = new TestClient(started.target);
    load = Promise.all(
      ["Get", "Put", "Get", "Put"].map(async (m, i) => {
        while (traffic) {
          await client.unary(storeMethod(m), SimpleRequestSchema, SimpleResponseSchema, create(SimpleRequestSchema, { responseSize: i + 1 })).catch(() => {});
          // One loop turn between calls, so the page's own requests are never starved.
          await new Promise((r) => setImmediate(r));
        }
      }),
    ).then(() => {});
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

  afterEach(async () => {
    // A test that stopped half-way must not leave the page holding its events.
    if ((await page?.locator("#pause").getAttribute("aria-pressed")) === "true") await pause(page);
  });

  const counts = () => Object.fromEntries(Object.entries(probes).map(([id, p]) => [id, total(p)]));
  /** Resolves once the other instances together took `n` more calls than now. */
  const othersTake = async (except: string, n: number) => {
    const sum = () => Object.entries(counts()).reduce((a, [id, c]) => (id === except ? a : a + c), 0);
    const from = sum();
    await waitFor(`${n} calls on the instances other than ${except}`, () => sum() >= from + n, 60_000);
  };
  /** After an action: stragglers admitted before it may still arrive; then the count stands still. */
  const assertNoNewCalls = async (id: string) => {
    await othersTake(id, 8);
    const settled = counts()[id];
    await othersTake(id, 15);
    assert.equal(counts()[id], settled, `no call reached ${id} after the action took effect`);
  };
  const healthCell = (p: Page, id: string) => p.locator(`#instances tr[data-instance="${id}"] td:nth-child(4)`);
  const pause = (p: Page) => p.locator("#pause").click();

  it("shows why a retried call went where it went: each attempt, its instance and the balancer's reason", async () => {
    const retried = page.locator("#calls tr.retried:not(:has(.badge.inflight))").first();
    await retried.waitFor();
    await pause(page); // the list stands still while the row is picked
    await retried.click();
    const route = page.locator("#detail ol.route");
    await route.waitFor();
    const retry = route.locator('li[data-decision="retry"]').first();
    assert.match(await retry.innerText(), /attempt 1 on failing failed: UNAVAILABLE/);
    assert.match(await retry.innerText(), /UNAVAILABLE on an idempotent method: retry 1/);
    const second = route.locator('li[data-decision="attempt"][data-attempt="2"]');
    assert.match(await second.innerText(), /attempt 2 → (fast|slow)/);
    assert.match(await second.innerText(), /round robin/);
    assert.match(await route.locator('li[data-decision="attempt"][data-attempt="1"]').innerText(), /attempt 1 → failing/);
    assert.match(await route.locator("li.ended").innerText(), /OK after/);
    assert.equal(await page.locator('#detail dd[data-fact="policy"]').innerText(), "round robin");
    assert.equal(await page.locator('#detail dd[data-fact="attempts"]').innerText(), "2");
    await page.screenshot({ path: shot("dashboard-why.png") });
  });

  it("the errors view marks the first failing call; the slow view puts the slow instance's calls first", async () => {
    await page.selectOption("#filter-view", "errors");
    const note = page.locator("#first-failure");
    await note.waitFor();
    assert.ok(firstFailedId, "the router failed a call");
    assert.equal(await note.getAttribute("data-call"), firstFailedId, "the first failure the page marks is the router's first");
    assert.match(await note.innerText(), /first failure\s+[\d:.]+ Store\/Put on failing: UNAVAILABLE/);
    await page.locator("#show-first-failure").click();
    const row = page.locator(`#calls tr.first-error[data-call="${firstFailedId}"]`);
    await row.waitFor();
    assert.equal(await row.getAttribute("aria-selected"), "true");
    await detailOf(page, firstFailedId);
    assert.match(await page.locator("#detail li.ended").innerText(), /UNAVAILABLE after/);
    assert.match(await page.locator("#detail").innerText(), /failing: the disk is full/);
    await page.screenshot({ path: shot("dashboard-errors.png") });

    await page.selectOption("#filter-view", "slow");
    await until(
      async () => (await page.locator("#calls tbody tr").first().locator("td:nth-child(3)").innerText()) === "slow",
      "the slowest call on the slow instance",
    );
    await page.screenshot({ path: shot("dashboard-slow.png") });
    await page.selectOption("#filter-view", "");
  });

  it("drain and eject from the page keep calls off the instance (counted there); other viewers see each action", async () => {
    // Keyboard: Escape cancels the confirmation, and nothing changes.
    await page.locator('button[data-action="drain"][data-instance="fast"]').focus();
    await page.keyboard.press("Enter");
    await page.locator("#op-dialog[open]").waitFor();
    await page.keyboard.press("Escape");
    await page.locator("#op-dialog[open]").waitFor({ state: "detached" });
    assert.equal(router.instances(STORE).find((i) => i.id === "fast")!.health, "serving");

    await page.locator('button[data-action="drain"][data-instance="fast"]').click();
    await page.locator('#op-dialog input[name="note"]').fill("deploying fast");
    await page.locator('#op-dialog button[value="confirm"]').click();
    await until(async () => /drained instance "fast"/.test(await page.locator("#action-status").innerText()), "the drain's summary");
    await until(async () => /draining \(operator\)/.test(await healthCell(viewer, "fast").innerText()), "the other viewer sees fast draining");
    await viewer.locator('#action-log li[data-kind="drain"][data-instance="fast"]').waitFor();
    assert.match(
      await viewer.locator('#action-log li[data-kind="drain"]').innerText(),
      /dashboard \(127\.0\.0\.1\): drained instance "fast" of ops\.v1\.Store.*deploying fast/,
    );
    await assertNoNewCalls("fast");
    await page.locator('button[data-action="undrain"][data-instance="fast"]').click();
    const back = counts().fast!;
    await waitFor("calls on fast again", () => counts().fast! > back, 60_000);

    // Eject, all by keyboard: Enter opens the question with Cancel focused; Tab, Enter confirms.
    await page.locator('button[data-action="eject"][data-instance="slow"]').focus();
    await page.keyboard.press("Enter");
    await page.locator("#op-dialog[open]").waitFor();
    await page.keyboard.press("Tab");
    await page.keyboard.press("Enter");
    await until(async () => /ejected instance "slow"/.test(await page.locator("#action-status").innerText()), "the ejection's summary");
    await until(async () => /ejected \(operator\)/.test(await healthCell(viewer, "slow").innerText()), "the other viewer sees slow ejected");
    await assertNoNewCalls("slow");
    await viewer.screenshot({ path: shot("dashboard-actions.png") });
    await page.locator('button[data-action="restore"][data-instance="slow"]').click();
    await until(async () => /restored instance "slow"/.test(await page.locator("#action-status").innerText()), "the restore's summary");
    const slowBack = counts().slow!;
    await waitFor(
      `calls on slow again (${router
        .instances(STORE)
        .map((i) => `${i.id} ${i.health} ${i.healthReason}`)
        .join(", ")})`,
      () => counts().slow! > slowBack,
      60_000,
    );

    const audited = audit.filter((e) => e.kind === "operatorAction");
    assert.deepEqual(
      audited.map((e) => `${e.action} ${e.instanceId}`),
      ["drain fast", "undrain fast", "eject slow", "restore slow"],
    );
    assert.ok(
      audited.every((e) => e.principal === "dashboard (127.0.0.1)"),
      JSON.stringify(audited),
    );
    assert.equal(audited[0]!.reason, "deploying fast");
  });

  it("pause refuses calls with a clear status until resumed; a weight set on the page is the balancer's", async () => {
    await page.locator(`button[data-action="pause"][data-service="${STORE}"]`).click();
    await page.locator('#op-dialog button[value="confirm"]').click();
    await viewer.locator(`.service-op[data-service="${STORE}"][data-paused="true"]`).waitFor();
    const err = await client.unary(storeMethod("Get"), SimpleRequestSchema, SimpleResponseSchema, create(SimpleRequestSchema, {})).then(
      () => assert.fail("a paused service answered"),
      (e: grpc.ServiceError) => e,
    );
    assert.equal(err.code, grpc.status.UNAVAILABLE);
    assert.match(err.details, /grpcrouter: ops\.v1\.Store is paused by an operator; calls are refused until it is resumed/);
    await viewer.screenshot({ path: shot("dashboard-paused.png") });
    await page.locator(`button[data-action="resume"][data-service="${STORE}"]`).click();
    await viewer.locator(`.service-op[data-service="${STORE}"][data-paused="false"]`).waitFor();
    const ok = await client.unary(storeMethod("Get"), SimpleRequestSchema, SimpleResponseSchema, create(SimpleRequestSchema, {}));
    assert.equal(ok.status.code, 0);

    await page.locator('button[data-action="setWeight"][data-instance="fast"]').click();
    await page.locator('#op-dialog input[name="weight"]').fill("5");
    await page.locator('#op-dialog button[value="confirm"]').click();
    await until(async () => (await viewer.locator('#instances tr[data-instance="fast"] td:nth-child(5)').innerText()) === "5*", "weight 5 on the other viewer");
    assert.equal(router.instances(STORE).find((i) => i.id === "fast")!.weight, 5);
  });

  it("replays a recorded unary call with edited JSON and a whole client stream; each appears as a new call", async () => {
    // Puts and client streams are not retried, so a replay the balancer sends to the failing
    // instance fails: the replays go to the working ones (drained, it still answers the Puts
    // and Uploads it already has).
    hub.actions.act(create(ActionRequestSchema, { kind: ActionKind.DRAIN, service: STORE, instanceId: "failing" }), "test");
    await pause(page);
    await page.fill("#filter-method", "Put");
    await page.selectOption("#filter-status", "ok");
    const original = await selectRow(page, `#calls tbody tr[data-method="${storeMethod("Put")}"]:has(.badge.ok)`);
    await pause(page);
    await page.locator("#replay summary").click();
    const editor = page.locator("#replay-editor");
    assert.match(await editor.inputValue(), /"responseSize": \d/, "the editor starts from the recorded request");
    await editor.fill('{ "responseSize": 42 }');
    await page.locator("#replay-send").click();
    // The page selects the new call and shows the outcome there.
    // What the page shows, read on each poll: on a timeout it says why (no section, another
    // call shown, the connection down, an error outcome).
    let seen = "";
    await until(
      async () => {
        seen = await page.evaluate(`JSON.stringify({
          outcome: document.getElementById("replay-result")?.innerText ?? null,
          detailOf: document.getElementById("detail")?.dataset.call ?? null,
          connection: document.getElementById("connection")?.dataset.state ?? null,
          paused: document.getElementById("pause")?.getAttribute("aria-pressed") ?? null,
        })`);
        return /call \d+: OK \(replay of call \d+\)/.test((JSON.parse(seen) as { outcome: string | null }).outcome ?? "");
      },
      () =>
        `the replay's outcome (the page: ${seen}; instances: ${router
          .instances(STORE)
          .map((i) => `${i.id} ${i.health} ${i.healthReason}`)
          .join(", ")})`,
    );
    const newId = await page.locator("#replay-result").getAttribute("data-new-call");
    assert.ok(newId && newId !== original);
    // The outcome shows at once; the new call is selected once its events have arrived.
    await until(async () => (await page.locator("#calls tbody tr.selected").getAttribute("data-call")) === newId, "the new call selected");
    await detailOf(page, newId);
    assert.ok(
      Object.values(probes).some((p) => p.putSizes.has(42)),
      "an instance got the edited request",
    );
    // Its metadata names the call it replays.
    assert.match(await page.locator("#detail").innerText(), new RegExp(`grpcrouter-replay-of\\s+${original}`));
    await page.screenshot({ path: shot("dashboard-replay.png") });

    // A client stream of three messages, replayed as two. A client stream is not retried once
    // its messages went out, and one sent before the drain may still have met the failing
    // instance: send it again until one succeeds (the list shows only the OK ones).
    const upload = () =>
      new Promise<void>((resolve, reject) => {
        const s = client.clientStream(storeMethod("Upload"), StreamingInputCallRequestSchema, StreamingInputCallResponseSchema, new grpc.Metadata(), {}, (e) =>
          e ? reject(e) : resolve(),
        );
        for (const n of [1, 2, 3]) s.write(create(StreamingInputCallRequestSchema, { payload: { body: new Uint8Array(n) } }));
        s.end();
      });
    for (let attempt = 1; ; attempt++) {
      const failed = await upload().then(
        () => undefined,
        (e: grpc.ServiceError) => e,
      );
      if (!failed) break;
      assert.match(failed.details, /failing: the disk is full/, "only the failing instance may fail the upload");
      assert.ok(attempt < 20, "an upload reached a working instance");
    }
    await page.fill("#filter-method", "Upload");
    await until(async () => (await page.locator("#calls tbody tr").count()) === 1, "the upload listed");
    await selectRow(page, "#calls tbody tr");
    await page.locator("#replay summary").click();
    assert.equal(JSON.parse(await page.locator("#replay-editor").inputValue()).length, 3, "the editor holds the recorded stream");
    await page.locator("#replay-editor").fill('[{ "payload": { "body": "AAA=" } }, {}]');
    await page.locator("#replay-send").click();
    await until(async () => /call \d+: OK \(replay of call \d+\)/.test(await page.locator("#replay-result").innerText()), "the stream's replay");
    assert.ok(
      Object.values(probes).some((p) => p.uploadMessages.includes(2)),
      "the instance got the edited stream of two",
    );
    await page.fill("#filter-method", "");
    await page.selectOption("#filter-status", "");
    assert.equal(audit.filter((e) => e.action === "replay").length, 2);
    hub.actions.act(create(ActionRequestSchema, { kind: ActionKind.UNDRAIN, service: STORE, instanceId: "failing" }), "test");
  });

  it("refuses an action from another site, or not sent as JSON", async () => {
    const post = (headers: Record<string, string>) =>
      fetch(new URL("action", dashboard.url), { method: "POST", headers, body: JSON.stringify({ kind: "pause", service: STORE }) });
    assert.equal((await post({ "content-type": "application/json", origin: "http://evil.example" })).status, 403);
    assert.equal((await post({ "content-type": "text/plain" })).status, 415);
    const bad = await post({ "content-type": "application/json" }).then(() =>
      fetch(new URL("action", dashboard.url), { method: "POST", headers: { "content-type": "application/json" }, body: '{"kind":"explode"}' }),
    );
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /kind: expected drain, undrain, eject, restore, setWeight, pause or resume, got "explode"/);
    // The pause above came from this machine: undo it.
    await fetch(new URL("action", dashboard.url), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ kind: "resume", service: STORE }),
    });
    // A viewer that opens now sees the actions done before it came.
    const late = await browser.newPage({ viewport: { width: 1200, height: 800 } });
    late.on("pageerror", (e) => pageErrors.push(String(e)));
    await late.goto(dashboard.url);
    await late.locator('#action-log li[data-kind="drain"][data-instance="fast"]').waitFor();
    await late.locator('#action-log li[data-kind="resume"]').first().waitFor();
    await late.close();
    assert.deepEqual(pageErrors, []);
  });
});

/** Waits until the detail panel shows call `id`. */
async function detailOf(p: Page, id: string): Promise<void> {
  await p.locator(`#detail[data-call="${id}"]`).waitFor();
}

/** Clicks the first row `selector` finds; returns its call id once the detail panel shows that call. */
async function selectRow(p: Page, selector: string): Promise<string> {
  // A list still settling (a filter just typed, events arriving) may redraw between reading a
  // row and clicking it: the row read is the one clicked, and a click on a row redrawn away
  // is tried again with the list as it is now. What is asserted stays the same: the detail
  // panel shows the very call clicked.
  const deadline = Date.now() + 60_000;
  for (;;) {
    const id = await p.locator(selector).first().getAttribute("data-call");
    assert.ok(id, "a listed call");
    try {
      await p.locator(`#calls tbody tr[data-call="${id}"]`).click({ timeout: 5_000 });
      await p.locator(`#detail[data-call="${id}"]`).waitFor({ timeout: 5_000 });
      return id;
    } catch (e) {
      if (Date.now() > deadline) throw e;
    }
  }
}

/** Polls a condition the page shows up to a generous deadline. */
async function until(cond: () => Promise<boolean>, what: string | (() => string), timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === "string" ? what : what()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
