// The web dashboard of a REAL router in Debian's chromium: a router with a hub and the
// dashboard, two bridged Echo instances (the example's service, each its own process),
// unary and bidi calls from a grpc-js client; the page shows the instances, each call, and
// each stream message as it passes; an instance that is killed disappears.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { create, createRegistry, fromBinary, toBinary, type DescFile, type DescMessage } from "@bufbuild/protobuf";
import type { Browser, Page } from "playwright-core";
import { AdminHub, createRouter, describeFromRegistry, startDashboard, type Dashboard, type Router, type TunnelSpec } from "../../src/index.js";
import { launchChromium, openDashboard, shot } from "./fixtures/chromium.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../../..");
const tsx = pathToFileURL(path.join(repo, "node_modules/tsx/dist/loader.mjs")).href;
const example = pathToFileURL(path.join(repo, "examples/echo/")).href;

interface Instance {
  child: ChildProcess;
  out: string;
}

function startInstance(router: string, id: string): Promise<Instance> {
  const child = spawn(process.execPath, ["--conditions=@grpcrouter/source", "--import", tsx, path.join(here, "fixtures/echo-instance.ts"), router, id], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const inst: Instance = { child, out: "" };
  return new Promise((resolve, reject) => {
    const onData = (b: Buffer) => {
      inst.out += b.toString();
      if (inst.out.includes(`registered ${id}`)) resolve(inst);
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", (code) => reject(new Error(`instance ${id} exited (${code}): ${inst.out}`)));
  });
}

describe("dashboard of a real router in chromium", { timeout: 180_000 }, () => {
  let hub: AdminHub;
  let router: Router;
  let dashboard: Dashboard;
  let address = "";
  let browser: Browser;
  let page: Page;
  const instances: Instance[] = [];
  let client: grpc.Client;
  let Say: { req: DescMessage; res: DescMessage };
  const pageErrors: string[] = [];

  before(async () => {
    const { file_demo_v1_echo } = (await import(new URL("gen/demo/v1/echo_pb.ts", example).href)) as { file_demo_v1_echo: DescFile };
    const { EchoTunnel } = (await import(new URL("gen/demo/v1/echo_router.ts", example).href)) as { EchoTunnel: TunnelSpec };
    const registry = createRegistry(file_demo_v1_echo);
    Say = { req: registry.getMessage("demo.v1.SayRequest")!, res: registry.getMessage("demo.v1.SayResponse")! };
    hub = new AdminHub({ describe: describeFromRegistry(registry) });
    router = createRouter({ services: [{ tunnel: EchoTunnel }], hub, logger: () => {} });
    const { port } = await router.listen("127.0.0.1:0");
    address = `127.0.0.1:${port}`;
    hub.setRouterAddress(address);
    dashboard = await startDashboard({ hub });
    client = new grpc.Client(address, grpc.credentials.createInsecure());
    browser = await launchChromium();
    page = await openDashboard(browser, dashboard.url, { width: 1400, height: 900 }, pageErrors);
  });

  after(async () => {
    for (const i of instances) i.child.kill("SIGKILL");
    client?.close();
    await browser?.close();
    await dashboard?.close();
    await router?.close(100);
    hub?.close();
  });

  const enc = (text: string) => Buffer.from(toBinary(Say.req, create(Say.req, { text } as never)));
  const dec = (b: Buffer) => fromBinary(Say.res, b) as unknown as { text: string; instanceId: string };

  it("shows both instances as they register", async () => {
    instances.push(await startInstance(address, "echo-a"), await startInstance(address, "echo-b"));
    await page.locator('#instances tr[data-instance="echo-a"]').waitFor();
    await page.locator('#instances tr[data-instance="echo-b"]').waitFor();
    assert.match(await page.locator('#instances tr[data-instance="echo-a"]').innerText(), /demo\.v1\.Echo[\s\S]*role=echo-a[\s\S]*serving/);
  });

  it("shows a unary call with its decoded request and response", async () => {
    const res = await new Promise<{ text: string; instanceId: string }>((resolve, reject) =>
      client.makeUnaryRequest(
        "/demo.v1.Echo/Say",
        (b: Buffer) => b,
        dec,
        enc("hello dashboard"),
        (e, r) => (e ? reject(e) : resolve(r!)),
      ),
    );
    const row = page.locator('#calls tr[data-method="/demo.v1.Echo/Say"]').first();
    // The row shows at the call's start; its end follows as its own event.
    await row.locator(".badge.ok").waitFor();
    assert.match(await row.innerText(), new RegExp(`${res.instanceId}[\\s\\S]*OK[\\s\\S]*1/1`));
    await row.click();
    await page.locator('#detail .timeline li[data-direction="response"]').waitFor();
    const detail = await page.locator("#detail").innerText();
    assert.match(detail, /"text": "hello dashboard"/);
    assert.match(detail, new RegExp(`"instanceId": "${res.instanceId}"`));
    assert.match(detail, /round|robin/i, "why this instance");
  });

  it("shows each message of a bidi call as it passes, while the call is open", async () => {
    const stream = client.makeBidiStreamRequest("/demo.v1.Echo/Chat", (b: Buffer) => b, dec);
    const answers: string[] = [];
    const answered = (n: number) =>
      new Promise<void>((resolve) => {
        const check = () => (answers.length >= n ? resolve() : stream.once("data", (m: { text: string }) => (answers.push(m.text), check())));
        check();
      });
    stream.write(enc("one"));
    await answered(1);
    const row = page.locator('#calls tr[data-method="/demo.v1.Echo/Chat"]');
    await row.waitFor();
    assert.match(await row.innerText(), /in flight/);
    await row.click();
    // The click redraws on the next animation frame; until this row shows as selected the
    // detail panel still holds the unary call, whose two messages would pass the wait below.
    await page.locator('#calls tr.selected[data-method="/demo.v1.Echo/Chat"]').waitFor();
    await page.locator('#detail .timeline li[data-index="1"]').waitFor();
    assert.equal(await page.locator("#detail .timeline li").count(), 2);
    stream.write(enc("two"));
    await answered(2);
    await page.locator('#detail .timeline li[data-index="3"]').waitFor();
    assert.match(await page.locator("#detail .timeline").innerText(), /"text": "one"[\s\S]*"text": "one"[\s\S]*"text": "two"[\s\S]*"text": "two"/);
    assert.match(await row.innerText(), /in flight[\s\S]*2\/2/);
    const done = new Promise<void>((resolve) => stream.on("status", () => resolve()));
    stream.end();
    stream.resume();
    await done;
    await page.locator('#calls tr[data-method="/demo.v1.Echo/Chat"] .badge.ok').waitFor();
    await page.screenshot({ path: shot("dashboard-router.png") }).catch(() => {});
  });

  it("removes an instance that is killed", async () => {
    const b = instances[1]!;
    b.child.kill("SIGKILL");
    await page.locator('#instances tr[data-instance="echo-b"]').waitFor({ state: "detached" });
    assert.equal(await page.locator("#instances tbody tr").count(), 1);
    assert.deepEqual(pageErrors, []);
  });
});
