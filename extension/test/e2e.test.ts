// End to end in a real VS Code (code-server) in Debian's chromium: the packaged VSIX, a copy of
// test-fixtures/editor-workspace, and a user who types, reads the Problems panel, saves and
// runs commands from the palette. A failing step leaves a screenshot in test-results/.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { unzipSync } from "fflate";
import type { Page } from "playwright-core";
import { buildVsix, freePort, lineOf, openQuickInput, repoRoot, STEP_MS, stagedExtension, TYPING_SETTINGS, Workbench } from "./code-server.js";

describe("the extension in a real VS Code", { timeout: 15 * 60_000 }, () => {
  let tmp: string;
  let folder: string;
  const workbench = new Workbench("e2e");
  let page: Page;
  let ordersText: string;
  let vsixPath: string;
  let routerPort: number;
  const orders = () => path.join(folder, "proto/shop/v1/orders.proto");

  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-e2e-"));
    folder = path.join(tmp, "editor-workspace");
    cpSync(path.join(repoRoot, "test-fixtures/editor-workspace"), folder, { recursive: true });
    ordersText = readFileSync(orders(), "utf8");
    const vsix = await buildVsix(tmp);
    vsixPath = vsix;
    routerPort = await freePort();
    // Start Router must listen exactly at routerPort.
    await workbench.open({ vsix, folder, settings: { ...TYPING_SETTINGS, "grpcrouter.router.port": routerPort } });
    page = workbench.page;
  });

  after(async () => {
    await workbench.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const step = <T>(name: string, fn: () => Promise<T>): Promise<T> => workbench.step(name, fn);

  // Our item (its DOM id ends with the id the extension gives it), not the save summary.
  const statusItem = () => page.locator('.statusbar-item[id$="grpcrouter.router"]');

  it("installs from a small VSIX that holds the bundles and nothing else", () => {
    const names: string[] = [];
    // List the entries without inflating them (buf alone is 45 MB).
    unzipSync(readFileSync(vsixPath), { filter: (f) => (names.push(f.name), false) });
    const files = names.filter((n) => n.startsWith("extension/")).map((n) => n.slice("extension/".length));
    for (const want of [
      "package.json",
      "extension/dist/extension.cjs",
      "server/dist/server.js",
      "server/dist/grpcrouter.js",
      "server/dist/bin/buf",
      "server/dist/ui/index.html",
    ]) {
      assert.ok(files.includes(want), `${want} is not in the VSIX: ${files.join(", ")}`);
    }
    const stray = files.filter((f) => /\.(ts|map|tsbuildinfo)$/.test(f) || f.includes("node_modules/") || f.includes("/test/") || f.includes("/src/"));
    assert.deepEqual(stray, []);
    assert.ok(statSync(vsixPath).size < 25 * 1024 * 1024, `VSIX is ${statSync(vsixPath).size} bytes`);
  });

  it("activates on the workspace and shows the router state in the status bar", async () => {
    await step("status bar", async () => {
      await statusItem().waitFor();
      assert.match((await statusItem().innerText()).trim(), /Router: stopped/);
    });
  });

  it("opens a .proto, shows a typed error in Problems on its line, then clears it", async () => {
    const errorLine = lineOf(ordersText, "string order_id = 2;");
    await step("open orders.proto", async () => {
      await workbench.quickOpen("orders.proto");
      await page.locator(".monaco-editor .view-lines", { hasText: "service Orders" }).waitFor();
      // The router-aware lenses over the service.
      await page.locator(".monaco-editor .codelens-decoration", { hasText: "Generate" }).first().waitFor();
      await page.locator(".monaco-editor .codelens-decoration", { hasText: "Start router" }).first().waitFor();
    });
    await step("type an error", async () => {
      // Go to the line of the field and break its type: `string` → `strin`.
      await openQuickInput(page, "Control+G");
      await page.keyboard.type(String(errorLine));
      await page.keyboard.press("Enter");
      await page.keyboard.press("Home");
      await page.keyboard.press("End");
      await page.keyboard.press("Home");
      for (let i = 0; i < "string".length; i++) await page.keyboard.press("Shift+ArrowRight");
      await page.keyboard.type("strin");
      await page.locator(".monaco-editor .view-lines", { hasText: "strin order_id" }).waitFor();
    });
    await step("see the error in Problems", async () => {
      await page.keyboard.press("Control+Shift+M");
      const row = page.locator(".markers-panel .monaco-list-row", { hasText: "strin" }).first();
      await row.waitFor();
      const text = await row.innerText();
      assert.match(text, new RegExp(`\\[Ln ${errorLine}, Col \\d+\\]`), `problem row: ${text}`);
    });
    await step("fix it", async () => {
      await page.locator(".monaco-editor .view-lines").first().click();
      await page.keyboard.press("Control+Z");
      await page.locator(".monaco-editor .view-lines", { hasText: "string order_id" }).waitFor();
      await page.locator(".markers-panel .monaco-list-row", { hasText: "strin" }).waitFor({ state: "detached" });
    });
  });

  it("generates on save: the router proto and code appear", async () => {
    const router = path.join(folder, "proto/gen/shop/v1/orders_router.proto");
    assert.equal(existsSync(router), false, "nothing is generated before the first save");
    await step("save and see generated files", async () => {
      await page.locator(".monaco-editor .view-lines").first().click();
      await page.keyboard.press("Control+S");
      const deadline = Date.now() + STEP_MS;
      while (!existsSync(router) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
      assert.ok(existsSync(router), "orders_router.proto was not written");
      assert.ok(existsSync(path.join(folder, "proto/gen/shop/v1/orders_pb.ts")));
      // And the user sees them: the Explorer shows the new gen folder.
      await page.keyboard.press("Control+Shift+E");
      await page.locator(".explorer-folders-view .monaco-list-row", { hasText: "gen" }).first().waitFor();
    });
    await step("check the generated code", async () => {
      await workbench.runCommand("gRPC Router: Check Generated Code");
      await page.locator(".notifications-toasts", { hasText: "generated code is up to date" }).first().waitFor();
    });
  });

  it("runs Generate from the palette: a deleted generated file is written again, and says so", async () => {
    const pb = path.join(folder, "proto/gen/shop/v1/orders_pb.ts");
    await step("generate from the palette", async () => {
      rmSync(pb);
      await workbench.runCommand("gRPC Router: Generate");
      await page
        .locator(".notifications-toasts", { hasText: /gRPC Router: proto\/gen: 1 written, \d+ unchanged/ })
        .first()
        .waitFor();
      assert.ok(existsSync(pb), "orders_pb.ts was not written again");
    });
  });

  it("runs Show Output: the extension's log opens, with the generate summaries in it", async () => {
    await step("show output", async () => {
      await workbench.runCommand("gRPC Router: Show Output");
      const panel = page.locator(".part.panel");
      await panel.locator(".monaco-editor .view-lines", { hasText: "[generate] proto/gen: 1 written" }).first().waitFor();
    });
  });

  it("runs Start Router from the command palette and the status bar follows", async () => {
    await step("start router", async () => {
      await workbench.runCommand("gRPC Router: Start Router");
      // On the port of the grpcrouter.router.port setting.
      await statusItem()
        .filter({ hasText: `Router: 127.0.0.1:${routerPort}` })
        .waitFor();
      // The lens over the service now counts the router's registered instances (none yet).
      await page.locator(".monaco-editor .view-lines").first().click();
      await page.keyboard.press("Control+Home");
      await page.locator(".monaco-editor .codelens-decoration", { hasText: "0 instances registered" }).first().waitFor();
      // An instance registers with that router (the CLI's bridge sidecar): the lens and the
      // status bar count it, live.
      const address = /Router: (127\.0\.0\.1:\d+)/.exec(await statusItem().innerText())![1]!;
      const cli = path.join(stagedExtension(tmp), "server/dist/grpcrouter.js");
      const bridge = spawn(process.execPath, [cli, "bridge", "--target", "127.0.0.1:9", "--router", address, "--root", path.join(folder, "proto")], {
        env: { ...process.env, GRPCROUTER_BUF: path.join(stagedExtension(tmp), "server/dist/bin/buf") },
        stdio: "ignore",
      });
      try {
        await page.locator(".monaco-editor .codelens-decoration", { hasText: "1 instance registered" }).first().waitFor();
        await statusItem().filter({ hasText: "1 instance" }).waitFor();
      } finally {
        bridge.kill("SIGKILL");
      }
      await page.locator(".monaco-editor .codelens-decoration", { hasText: "0 instances registered" }).first().waitFor();
    });
    await step("stop router", async () => {
      await workbench.runCommand("gRPC Router: Stop Router");
      await statusItem().filter({ hasText: "Router: stopped" }).waitFor();
    });
  });
});
