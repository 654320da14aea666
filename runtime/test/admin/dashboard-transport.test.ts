// How each instance is connected, end to end: real routers (one cleartext that takes tokens,
// one TLS that requires client certificates), each serving the Admin service on its own port
// as `grpcrouter serve` does, and real bridges registering over HTTP/2 and over the WebSocket
// fallback. GetSnapshot and Watch carry each instance's transport and principal (a token only
// as a digest), and the dashboard in Debian's chromium labels each row with them.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { toJsonString } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import type { Browser, Page } from "playwright-core";
import { AdminHub, addAdminService, createAdminClient, startDashboard, type AdminClient, type Dashboard } from "../../src/admin/index.js";
import { loadChannelCredentials, loadServerCredentials, tokenAuthorizer, tokenCredentials } from "../../src/auth/index.js";
import { Instance_Transport, SnapshotSchema, type Event, type Instance } from "../../src/gen/grpcrouter/v1/admin_pb.js";
import { GrpcServer, createRouter, type Bridge, type Router, type RouterOptions } from "../../src/tunnel/index.js";
import { TestTunnel, quietLog, startBridge } from "../tunnel/helpers.js";
import { launchChromium, openDashboard, shot } from "./fixtures/chromium.js";

const here = path.dirname(fileURLToPath(import.meta.url));
/** A token the instances present: it must never show in the Admin API or on the page. */
const TOKEN = "tok-7f3a9c-do-not-show-me";
/** The names of make-certs.sh's client certificate, as the router's principal writes them. */
const CLIENT_PRINCIPAL = "certificate CN=instance-a,DNS:instance-a.example,URI:spiffe://example/instance-a";

interface Served {
  router: Router;
  server: GrpcServer;
  hub: AdminHub;
  dashboard: Dashboard;
  admin: AdminClient;
  target: string;
  bridges: Bridge[];
}

async function until<T>(get: () => T | undefined, what: string, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = get();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("how each instance is connected: transport and principal", { timeout: 180_000 }, () => {
  let dir: string;
  let browser: Browser;
  const pageErrors: string[] = [];
  const served: Served[] = [];
  const f = (name: string) => path.join(dir, name);
  const mtls = () => loadChannelCredentials({ ca: f("ca.pem"), cert: f("client.pem"), key: f("client.key") });

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-transport-"));
    execFileSync("bash", [path.join(here, "..", "auth", "make-certs.sh"), dir]);
    browser = await launchChromium();
  });

  after(async () => {
    for (const s of served) {
      for (const b of s.bridges) await b.stop(100);
      s.admin.close();
      await s.dashboard.close();
      await s.router.close(100);
      await s.server.close(100);
      s.hub.close();
    }
    await browser?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** A router with its Admin service on its own port and its dashboard. */
  async function serve(options: Partial<RouterOptions>, tls?: { credentials: grpc.ServerCredentials; client: grpc.ChannelCredentials }): Promise<Served> {
    const hub = new AdminHub();
    const router = createRouter({ services: [{ tunnel: TestTunnel }], logger: quietLog(), hub, ...options });
    const server = new GrpcServer();
    router.addTo(server);
    addAdminService(server, hub);
    const { port } = await server.listen("127.0.0.1:0", tls?.credentials);
    const target = `${tls ? "localhost" : "127.0.0.1"}:${port}`;
    const s: Served = { router, server, hub, target, dashboard: await startDashboard({ hub }), admin: createAdminClient(target, tls?.client), bridges: [] };
    served.push(s);
    return s;
  }

  async function snapshotById(s: Served): Promise<Map<string, Instance>> {
    const snap = await s.admin.getSnapshot();
    assert.ok(!toJsonString(SnapshotSchema, snap).includes(TOKEN), "the token is nowhere in the snapshot");
    return new Map(snap.instances.map((i) => [i.id, i]));
  }

  /** The connection label of an instance's row, once the row shows it. */
  async function label(page: Page, id: string): Promise<{ code: string | null; text: string; title: string | null; principal: string | null }> {
    const l = page.locator(`#instances tr[data-instance="${id}"] .transport`);
    await l.waitFor();
    return {
      code: await l.getAttribute("data-transport"),
      text: ((await l.textContent()) ?? "").replace(/\s+/g, " ").trim(),
      title: await l.getAttribute("title"),
      principal: await l.getAttribute("data-principal"),
    };
  }

  it("cleartext with tokens: HTTP/2 and WebSocket, the token known only by its digest (GetSnapshot, Watch, the page)", async () => {
    const s = await serve({ authorize: tokenAuthorizer({ tokens: TOKEN }) });
    const token = { credentialsHook: tokenCredentials(TOKEN) };
    s.bridges.push(await startBridge(s.target, "plain-h2", { transport: "h2", ...token }));

    // A watcher that is there before the WebSocket instance comes hears its transport live.
    const events: Event[] = [];
    const abort = new AbortController();
    const watching = (async () => {
      for await (const ev of s.admin.watch({}, abort.signal)) events.push(ev);
    })().catch(() => {});
    await until(() => (events.length > 0 ? true : undefined), "the Watch snapshot");
    s.bridges.push(await startBridge(s.target, "plain-ws", { transport: "websocket", ...token }));
    const live = await until(
      () => events.find((e) => e.event.case === "instanceRegistered" && e.event.value.id === "plain-ws")?.event.value as Instance | undefined,
      "plain-ws registered on Watch",
    );
    abort.abort();
    await watching;
    assert.equal(live.transport, Instance_Transport.WEBSOCKET);
    assert.match(live.principal, /^credentials sha256:[0-9a-f]{16}$/);

    const byId = await snapshotById(s);
    assert.equal(byId.get("plain-h2")?.transport, Instance_Transport.HTTP2);
    assert.equal(byId.get("plain-ws")?.transport, Instance_Transport.WEBSOCKET);
    // The same token, so the same principal: which token, never the token itself.
    assert.equal(byId.get("plain-h2")?.principal, live.principal);
    assert.equal(byId.get("plain-ws")?.principal, live.principal);

    const page = await openDashboard(browser, s.dashboard.url, { width: 1400, height: 900 }, pageErrors);
    const h2 = await label(page, "plain-h2");
    assert.deepEqual([h2.code, h2.text, h2.principal], ["h2c", "HTTP/2 with credentials", live.principal]);
    assert.match(h2.title ?? "", /HTTP\/2 without TLS \(h2c\)/);
    const ws = await label(page, "plain-ws");
    // A key shows the credentials; a screen reader hears them in words.
    assert.deepEqual([ws.code, ws.text], ["ws", "WebSocket with credentials"]);
    assert.match(ws.title ?? "", /WebSocket fallback, without TLS \(ws\)[\s\S]*principal: credentials sha256:[0-9a-f]{16}[\s\S]*from 127\.0\.0\.1:\d+/);
    // The row still reads as before (health, address).
    assert.equal(await page.locator('#instances tr[data-instance="plain-ws"] .transport .codicon-key').count(), 1);
    assert.match(await page.locator('#instances tr[data-instance="plain-ws"]').innerText(), /serving[\s\S]*WebSocket[\s\S]*127\.0\.0\.1:\d+/);
    assert.ok(!(await page.content()).includes(TOKEN), "the token is nowhere on the page");
    assert.deepEqual(pageErrors, []);
    await page.close();
  });

  it("TLS with client certificates: HTTP/2 and WebSocket over TLS, known by the certificate's names", async () => {
    const s = await serve({}, { credentials: loadServerCredentials({ cert: f("server.pem"), key: f("server.key"), clientCa: f("ca.pem") }), client: mtls() });
    s.bridges.push(await startBridge(s.target, "tls-h2", { transport: "h2", credentials: mtls() }));
    s.bridges.push(await startBridge(s.target, "tls-ws", { transport: "websocket", credentials: mtls() }));

    const byId = await snapshotById(s);
    assert.equal(byId.get("tls-h2")?.transport, Instance_Transport.HTTP2_TLS);
    assert.equal(byId.get("tls-ws")?.transport, Instance_Transport.WEBSOCKET_TLS);
    assert.equal(byId.get("tls-h2")?.principal, CLIENT_PRINCIPAL);
    assert.equal(byId.get("tls-ws")?.principal, CLIENT_PRINCIPAL);

    const page = await openDashboard(browser, s.dashboard.url, { width: 1400, height: 900 }, pageErrors);
    const h2 = await label(page, "tls-h2");
    assert.deepEqual([h2.code, h2.text, h2.principal], ["h2", "HTTP/2 mTLS", CLIENT_PRINCIPAL]);
    assert.match(h2.title ?? "", /HTTP\/2 over TLS \(h2\)[\s\S]*principal: certificate CN=instance-a,DNS:instance-a\.example/);
    const ws = await label(page, "tls-ws");
    assert.deepEqual([ws.code, ws.text], ["wss", "WebSocket mTLS"]);
    assert.match(ws.title ?? "", /WebSocket fallback, over TLS \(wss\)[\s\S]*URI:spiffe:\/\/example\/instance-a/);
    assert.equal(await page.locator("#instances .transport .codicon-lock").count(), 2);
    assert.equal(await page.locator("#instances .transport .codicon-key").count(), 0);
    await page
      .locator("#instances")
      .screenshot({ path: shot("dashboard-transport.png") })
      .catch(() => {});
    assert.deepEqual(pageErrors, []);
    await page.close();
  });
});
