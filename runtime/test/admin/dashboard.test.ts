// The web dashboard in Debian's chromium, fed by an AdminHub the test drives the way a
// router does: instances appear and go, calls and each stream message show up live, the
// timeline decodes bodies, pause/clear/export/filters work, and the strict CSP holds (no
// console errors). The same page with a real router and bridges: test/tunnel's e2e.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { create, createRegistry, toBinary } from "@bufbuild/protobuf";
import { chromium, type Browser, type Page } from "playwright-core";
import { AdminHub, describeFromRegistry, startDashboard, type Dashboard } from "../../src/admin/index.js";
import { file_grpcrouter_v1_admin, GetSnapshotRequestSchema, EventSchema, SnapshotSchema, WatchRequestSchema } from "../../src/gen/grpcrouter/v1/admin_pb.js";

const SERVICE = "grpcrouter.v1.Admin";

describe("web dashboard in chromium", { timeout: 120_000 }, () => {
  const hub = new AdminHub({ routerId: "dash", routerAddress: "127.0.0.1:9999", describe: describeFromRegistry(createRegistry(file_grpcrouter_v1_admin)) });
  hub.setServices([{ name: SERVICE, methods: ["GetSnapshot", "Watch"] }]);
  let dashboard: Dashboard;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];
  let nextCall = 1;

  before(async () => {
    dashboard = await startDashboard({ hub });
    browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
    const context = await browser.newContext({ acceptDownloads: true });
    page = await context.newPage();
    page.on("pageerror", (e) => pageErrors.push(String(e)));
    page.on("console", (m) => {
      if (m.type() === "error") pageErrors.push(m.text());
    });
    await page.goto(dashboard.url);
    await page.locator('#connection[data-state="live"]').waitFor();
  });

  after(async () => {
    await browser?.close();
    await dashboard?.close();
    hub.close();
  });

  const rows = (sel: string) => page.locator(sel);

  // A click only schedules a redraw (one per animation frame), so until the row shows as
  // selected the detail panel may still show the previously selected call, whose timeline
  // would satisfy a wait for the new call's messages.
  async function select(callId: number): Promise<void> {
    await page.locator(`#calls tr[data-call="${callId}"]`).click();
    await page.locator(`#calls tr.selected[data-call="${callId}"]`).waitFor();
  }

  it("shows instances as they register and removes one that goes", async () => {
    hub.publish({ type: "instanceRegistered", instance: { id: "echo-a", service: SERVICE, labels: { zone: "eu" }, address: "127.0.0.1:5001", streams: 2 } });
    hub.publish({ type: "instanceRegistered", instance: { id: "echo-b", service: SERVICE, address: "127.0.0.1:5002", streams: 1 } });
    await rows("#instances tbody tr").nth(1).waitFor();
    assert.equal(await rows("#instances tbody tr").count(), 2);
    assert.match(await rows('#instances tr[data-instance="echo-a"]').innerText(), /zone=eu[\s\S]*serving/);
    hub.publish({ type: "instanceChanged", instance: { id: "echo-b", service: SERVICE, health: "draining" } });
    await page.locator('#instances tr[data-instance="echo-b"] .badge.warn').waitFor();
    hub.publish({ type: "instanceDeregistered", instance: { id: "echo-b", service: SERVICE } });
    await page.locator('#instances tr[data-instance="echo-b"]').waitFor({ state: "detached" });
    assert.equal(await rows("#instances tbody tr").count(), 1);
  });

  it("lists a unary call and shows its decoded timeline and a grpcurl command", async () => {
    const callId = nextCall++;
    hub.publish({
      type: "callStarted",
      callId,
      method: `/${SERVICE}/GetSnapshot`,
      kind: "unary",
      instanceId: "echo-a",
      reason: "round robin",
      metadata: { "x-user": "ada", authorization: "Bearer s3cret" },
    });
    hub.publish({ type: "callMessage", callId, direction: "request", payload: toBinary(GetSnapshotRequestSchema, create(GetSnapshotRequestSchema)) });
    hub.publish({ type: "callMessage", callId, direction: "response", payload: toBinary(SnapshotSchema, create(SnapshotSchema, { routerId: "seven" })) });
    hub.publish({ type: "callEnded", callId, code: 0 });
    const row = page.locator(`#calls tr[data-call="${callId}"]`);
    await row.locator(".badge.ok").waitFor();
    assert.match(await row.innerText(), /Admin\/GetSnapshot[\s\S]*echo-a[\s\S]*OK[\s\S]*1\/1/);
    await select(callId);
    await page.locator("#detail .timeline li").nth(1).waitFor();
    const detail = await page.locator("#detail").innerText();
    assert.match(detail, /round robin/);
    assert.match(detail, /"routerId": "seven"/);
    assert.match(detail, /\[redacted\]/, "authorization is redacted");
    assert.doesNotMatch(detail, /s3cret/);
    assert.equal(await page.locator("#copy-grpcurl").isEnabled(), true);
  });

  it("shows each message of a streaming call as it passes", async () => {
    const callId = nextCall++;
    hub.publish({ type: "callStarted", callId, method: `/${SERVICE}/Watch`, kind: "server_streaming", instanceId: "echo-a" });
    const row = page.locator(`#calls tr[data-call="${callId}"]`);
    await row.waitFor();
    assert.match(await row.innerText(), /in flight/);
    await select(callId);
    assert.match(await page.locator("#detail").innerText(), /Admin\/Watch[\s\S]*No messages yet/);
    hub.publish({
      type: "callMessage",
      callId,
      direction: "request",
      payload: toBinary(WatchRequestSchema, create(WatchRequestSchema, { includeMessages: true })),
    });
    for (let i = 1; i <= 3; i++) {
      hub.publish({
        type: "callMessage",
        callId,
        direction: "response",
        payload: toBinary(EventSchema, create(EventSchema, { event: { case: "dropped", value: BigInt(i) } })),
      });
      // Each message is on screen before the next is sent: live, not at the end of the call.
      await page.locator(`#detail .timeline li[data-index="${i}"]`).waitFor();
      assert.match(await row.innerText(), new RegExp(`1/${i}`));
    }
    assert.match(await page.locator("#detail .timeline").innerText(), /"includeMessages": true[\s\S]*"dropped": "3"/);
    hub.publish({ type: "callEnded", callId, code: 1, message: "client went away" });
    await page.locator(`#calls tr[data-call="${callId}"] .badge.error`).waitFor();
    assert.match(await page.locator("#detail").innerText(), /CANCELLED[\s\S]*client went away/);
    assert.equal(await page.locator("#copy-grpcurl").isEnabled(), true, "server streaming has one request: replayable");
  });

  it("pauses, filters, exports JSON Lines and clears", async () => {
    await page.locator("#pause").click();
    const held = nextCall++;
    hub.publish({ type: "callStarted", callId: held, method: `/${SERVICE}/GetSnapshot`, instanceId: "echo-a" });
    hub.publish({ type: "callEnded", callId: held, code: 5 });
    await page.locator("#paused-note").filter({ hasText: "2 events held" }).waitFor();
    assert.equal(await page.locator(`#calls tr[data-call="${held}"]`).count(), 0);
    await page.locator("#pause").click();
    await page.locator(`#calls tr[data-call="${held}"]`).waitFor();

    await page.locator("#filter-status").selectOption("error");
    await page.locator(`#calls tr[data-call="1"]`).waitFor({ state: "detached" });
    assert.equal(await page.locator("#calls tbody tr").count(), 2);
    await page.locator("#filter-status").selectOption("");

    const [download] = await Promise.all([page.waitForEvent("download"), page.locator("#export").click()]);
    const text = await readFile((await download.path())!, "utf8");
    const lines = text
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines.filter((l) => l.callStarted).length, 3);
    assert.equal(lines.filter((l) => l.callMessage).length, 6);

    await page.locator("#clear").click();
    await page.locator("#calls-empty").waitFor({ state: "visible" });
    assert.deepEqual(pageErrors, [], "no script errors or CSP violations");
  });

  it("survives a reload with the recent history (resync from the snapshot)", async () => {
    await page.reload();
    await page.locator('#connection[data-state="live"]').waitFor();
    await page.locator('#instances tr[data-instance="echo-a"]').waitFor();
    assert.equal(await page.locator("#calls tbody tr").count(), 3, "the hub's history is shown again after a reload");
  });

  it("is usable from the keyboard: arrow keys move through the calls and show each one; focus survives new calls", async () => {
    const first = nextCall++;
    const second = nextCall++;
    for (const id of [first, second]) {
      hub.publish({ type: "callStarted", callId: id, method: `/${SERVICE}/GetSnapshot`, instanceId: "echo-a" });
      hub.publish({ type: "callEnded", callId: id, code: 0 });
    }
    await page.locator(`#calls tr[data-call="${first}"]`).waitFor();
    // One row in the tab order (roving tabindex): Tab from the filters reaches the list once.
    assert.equal(await page.locator('#calls tbody tr[tabindex="0"]').count(), 1);
    await page.locator(`#calls tr[data-call="${second}"]`).focus();
    await page.keyboard.press("ArrowDown");
    await page.locator(`#calls tr.selected[data-call="${first}"][aria-selected="true"]`).waitFor();
    assert.equal(await page.evaluate("document.activeElement?.dataset?.call"), String(first), "focus moved with the selection");
    assert.equal(await page.locator(`#calls tr[data-call="${second}"]`).getAttribute("aria-selected"), "false");
    // A new call re-renders the list; the focused row keeps focus.
    const third = nextCall++;
    hub.publish({ type: "callStarted", callId: third, method: `/${SERVICE}/Watch`, instanceId: "echo-a" });
    await page.locator(`#calls tr[data-call="${third}"]`).waitFor();
    assert.equal(await page.evaluate("document.activeElement?.dataset?.call"), String(first));
    await page.keyboard.press("Home");
    await page.locator(`#calls tr.selected[data-call="${third}"]`).waitFor();
    assert.equal(await page.locator("#connection").getAttribute("role"), "status", "connection changes are announced");
    hub.publish({ type: "callEnded", callId: third, code: 0 });
  });

  it("tells screen readers of failed calls (assertive) and new calls and instances (polite), a few times a minute at most", async () => {
    const failing = nextCall++;
    hub.publish({ type: "callStarted", callId: failing, method: `/${SERVICE}/Watch`, instanceId: "echo-a" });
    hub.publish({ type: "callEnded", callId: failing, code: 14 });
    hub.publish({ type: "instanceRegistered", instance: { id: "echo-c", service: SERVICE } });
    await page
      .locator("#live-errors")
      .filter({ hasText: `/${SERVICE}/Watch UNAVAILABLE` })
      .waitFor({ state: "attached" });
    await page
      .locator("#live-calls")
      .filter({ hasText: /instance echo-c of grpcrouter\.v1\.Admin registered[\s\S]*new call/ })
      .waitFor({ state: "attached" });
    assert.equal(await page.locator("#live-errors").getAttribute("role"), "alert");
    assert.equal(await page.locator("#live-calls").getAttribute("aria-live"), "polite");
    // Not shown, only spoken: a clipped pixel.
    const box = await page.locator("#live-calls").boundingBox();
    assert.ok(box && box.width <= 1 && box.height <= 1, JSON.stringify(box));
    hub.publish({ type: "instanceDeregistered", instance: { id: "echo-c", service: SERVICE } });
  });

  it("draws only the rows in view of a long list, and the keyboard reaches the oldest call", async () => {
    const firstId = nextCall;
    for (let i = 0; i < 1000; i++) {
      const id = nextCall++;
      hub.publish({ type: "callStarted", callId: id, method: `/${SERVICE}/GetSnapshot`, instanceId: "echo-a" });
      hub.publish({ type: "callEnded", callId: id, code: 0 });
    }
    const newest = nextCall - 1;
    await page.locator(`#calls tr[data-call="${newest}"]`).waitFor();
    const drawn = await page.locator("#calls tbody tr").count();
    assert.ok(drawn < 120, `only the rows in view (and a few more) exist: ${drawn}`);
    assert.equal(Number(await page.locator("#calls").getAttribute("aria-rowcount")) - 1, Number(await page.locator("#calls-count").textContent()));
    await page.locator(`#calls tr[data-call="${newest}"]`).focus();
    await page.keyboard.press("End");
    const rows = await page.locator("#calls").getAttribute("aria-rowcount");
    const last = page.locator(`#calls tr.selected[aria-rowindex="${rows}"]`);
    await last.waitFor();
    assert.ok(Number(await last.getAttribute("data-call")) < firstId, "the oldest call in the list, older than this test's");
    assert.equal(await page.evaluate("document.activeElement?.getAttribute('aria-rowindex')"), rows, "drawn, selected and focused");
    await page.keyboard.press("Home");
    await page.locator(`#calls tr.selected[data-call="${newest}"]`).waitFor();
  });
});
