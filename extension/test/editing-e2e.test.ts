// End to end in a real VS Code (code-server) in Debian's chromium: a user goes to a message of
// another file with Go to Symbol in Workspace ("#" in Quick Open), sees a service's methods in
// the Outline view, renames a message with F2 and both files change on disk after Save All, then fixes an
// unresolved well-known type with the "add import" quick fix (Ctrl+.), and adds a lint rule
// to buf.yaml and sees its findings come and go in Problems as it saves. A failing step
// leaves a screenshot in test-results/.
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import type { Page } from "playwright-core";
import { buildVsix, lineOf, openQuickInput, repeatUntilShown, repoRoot, STEP_MS, TYPING_SETTINGS, Workbench } from "./code-server.js";

async function until(what: string, check: () => boolean, timeoutMs = STEP_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe("editing .proto files in a real VS Code", { timeout: 15 * 60_000 }, () => {
  let tmp: string;
  let folder: string;
  const workbench = new Workbench("e2e-edit");
  let page: Page;
  const file = (rel: string) => path.join(folder, "proto/shop/v1", rel);

  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-e2e-edit-"));
    folder = path.join(tmp, "editor-workspace");
    cpSync(path.join(repoRoot, "test-fixtures/editor-workspace"), folder, { recursive: true });
    const vsix = await buildVsix(tmp);
    // No generation: this walk is about editing, and the gen folder would only add noise.
    await workbench.open({ vsix, folder, settings: { ...TYPING_SETTINGS, "grpcrouter.generateOnSave": false } });
    page = workbench.page;
  });

  after(async () => {
    await workbench.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const step = <T>(name: string, fn: () => Promise<T>): Promise<T> => workbench.step(name, fn);

  async function openFile(name: string, shows: string): Promise<void> {
    await workbench.quickOpen(name);
    await page.locator(".monaco-editor .view-lines", { hasText: shows }).waitFor();
  }

  /** Puts the cursor on a 1-based line, `column` characters in. */
  async function goTo(line: number, column: number): Promise<void> {
    await openQuickInput(page, "Control+G");
    await page.keyboard.type(`${line}:${column}`);
    await page.keyboard.press("Enter");
  }

  it("goes to a message of another file with Go to Symbol in Workspace (#)", async () => {
    const moneyLine = lineOf(readFileSync(file("money.proto"), "utf8"), "message Money");
    await step("open orders.proto", () => openFile("orders.proto", "service Orders"));
    await step("# lists Money of money.proto", async () => {
      const row = page
        .locator(".quick-input-list .monaco-list-row")
        // The label is the kind's icon, then the name.
        .filter({ has: page.locator(".label-name", { hasText: /\bMoney$/ }) })
        .first();
      // Quick Open with "#" is Go to Symbol in Workspace (Ctrl+T, which the browser keeps for
      // itself). The picker asks the server as the query is typed; before the module has
      // compiled it finds nothing: type the query again until Money is listed, as a user would.
      const input = await openQuickInput(page, "Control+P");
      await repeatUntilShown(row, "Money in Go to Symbol in Workspace", async () => {
        await input.fill("#Mone");
        await input.fill("#Money");
      });
      assert.match(await row.innerText(), /shop\.v1.*money\.proto/s);
      await row.click();
    });
    await step("money.proto opens at message Money", async () => {
      await page.locator(".tab.active", { hasText: "money.proto" }).waitFor();
      await page.locator(".monaco-editor .view-lines", { hasText: "message Money" }).waitFor();
      await page.locator(".statusbar-item", { hasText: new RegExp(`Ln ${moneyLine}, Col 9\\b`) }).waitFor();
    });
  });

  it("lists a service's methods in the Outline view", async () => {
    await step("open orders.proto", () => openFile("orders.proto", "service Orders"));
    await step("the Outline shows Orders with Get, Watch, Import and Sync", async () => {
      await workbench.runCommand("Explorer: Focus on Outline View");
      const label = (name: string) =>
        page
          .locator(".outline-pane .monaco-list-row")
          .filter({ has: page.locator(".label-name", { hasText: new RegExp(`\\b${name}$`) }) })
          .first();
      await label("Orders").waitFor();
      const rows = page.locator(".outline-pane .monaco-list-row");
      const names = async () => (await rows.locator(".label-name").allInnerTexts()).map((t) => t.trim());
      for (const method of ["Get", "Watch", "Import", "Sync"]) await label(method).waitFor();
      // The methods are the service's children, listed under it in the file's order.
      const listed = await names();
      const at = listed.indexOf("Orders");
      assert.deepEqual(listed.slice(at + 1, at + 5), ["Get", "Watch", "Import", "Sync"]);
    });
  });

  it("renames a message with F2 across two files, and Save All writes both", async () => {
    const moneyText = readFileSync(file("money.proto"), "utf8");
    await step("open money.proto", () => openFile("money.proto", "message Money"));
    await step("rename Money to Cash", async () => {
      const renameBox = page.locator(".rename-box input");
      // The server answers once the module has compiled; until then VS Code says there is
      // nothing to rename. Ask again until the rename box opens.
      await repeatUntilShown(
        renameBox,
        "the rename box",
        async () => {
          await goTo(lineOf(moneyText, "message Money"), "message Mo".length);
          await page.keyboard.press("F2");
        },
        { between: () => page.keyboard.press("Escape") },
      );
      assert.equal(await renameBox.inputValue(), "Money");
      await renameBox.fill("Cash");
      await page.keyboard.press("Enter");
      await page.locator(".monaco-editor .view-lines", { hasText: "message Cash" }).waitFor();
    });
    await step("save all and see both files changed on disk", async () => {
      await workbench.runCommand("File: Save All Files");
      await until("money.proto to say Cash", () => readFileSync(file("money.proto"), "utf8").includes("message Cash {"));
      await until("orders.proto to say Cash", () => readFileSync(file("orders.proto"), "utf8").includes("  Cash total = 3;"));
      assert.ok(!readFileSync(file("orders.proto"), "utf8").includes("Money total"));
    });
  });

  it("fixes an unresolved well-known type with the add-import quick fix", async () => {
    const ordersText = readFileSync(file("orders.proto"), "utf8");
    await step("open orders.proto", () => openFile("orders.proto", "service Orders"));
    await step("type a field of an unimported well-known type", async () => {
      await goTo(lineOf(ordersText, "Status status = 4;"), 1);
      await page.keyboard.press("End");
      await page.keyboard.press("Enter");
      await page.keyboard.type("google.protobuf.Timestamp placed_at = 5;");
      await page.locator(".monaco-editor .view-lines", { hasText: "placed_at = 5;" }).waitFor();
      await page.keyboard.press("Control+Shift+M");
      await page.locator(".markers-panel .monaco-list-row", { hasText: "google.protobuf.Timestamp" }).first().waitFor();
    });
    await step("Ctrl+. and pick Add import", async () => {
      await page.locator(".monaco-editor .view-lines").first().click();
      const fix = page.locator(".action-widget .monaco-list-row", { hasText: 'Add import "google/protobuf/timestamp.proto"' }).first();
      // On a loaded machine the first request may be overtaken (VS Code then says "No code
      // actions available"): like a user, press Ctrl+. again.
      await repeatUntilShown(
        fix,
        "the quick fix",
        async () => {
          await goTo(lineOf(ordersText, "Status status = 4;") + 1, 5);
          await page.keyboard.press("Control+.");
        },
        { tryMs: 10_000, between: () => page.keyboard.press("Escape") },
      );
      // The first (preferred) fix is focused: Enter applies it, as a keyboard user does.
      await page.keyboard.press("Enter");
      await page.locator(".markers-panel .monaco-list-row", { hasText: "google.protobuf.Timestamp" }).waitFor({ state: "detached" });
      // The import went in at the top, among the others: scroll there to see it.
      await page.keyboard.press("Control+Home");
      await page.locator(".monaco-editor .view-lines", { hasText: 'import "google/protobuf/timestamp.proto";' }).waitFor();
    });
    await step("save and see the import on disk", async () => {
      await page.locator(".monaco-editor .view-lines").first().click();
      await page.keyboard.press("Control+S");
      await until("the import on disk", () => readFileSync(file("orders.proto"), "utf8").includes('import "google/protobuf/timestamp.proto";\n'));
      assert.ok(existsSync(file("orders.proto")));
    });
  });

  it("follows a rule added to buf.yaml and saved, in the Problems list, and its removal", async () => {
    const bufYaml = path.join(folder, "proto/buf.yaml");
    const finding = page.locator(".markers-panel .monaco-list-row", { hasText: "should have a non-empty comment" }).first();
    await step("open buf.yaml and add a lint rule", async () => {
      await workbench.quickOpen("buf.yaml");
      await page.locator(".monaco-editor .view-lines", { hasText: "version: v2" }).waitFor();
      await page.keyboard.press("Control+End");
      // One line in YAML's flow style: no Enter, so no indentation of the editor's own.
      await page.keyboard.type("lint: {use: [COMMENT_FIELD]}");
      await page.keyboard.press("Control+S");
      await until("the rule on disk", () => readFileSync(bufYaml, "utf8").includes("lint: {use: [COMMENT_FIELD]}"));
    });
    await step("Problems lists the rule's findings in the .proto files", async () => {
      if (!(await page.locator(".markers-panel").isVisible())) await page.keyboard.press("Control+Shift+M");
      await finding.waitFor();
      assert.match(await finding.innerText(), /COMMENT_FIELD/);
    });
    await step("delete the rule, save, and the findings go", async () => {
      await page.locator(".monaco-editor .view-lines", { hasText: "COMMENT_FIELD" }).click();
      // The whole line (Ctrl+Z would undo word by word, leaving YAML that does not parse).
      await page.keyboard.press("Control+End");
      await page.keyboard.press("Shift+Home");
      await page.keyboard.press("Backspace");
      await page.locator(".monaco-editor .view-lines", { hasText: "COMMENT_FIELD" }).waitFor({ state: "detached" });
      await page.keyboard.press("Control+S");
      await until("buf.yaml as it was", () => readFileSync(bufYaml, "utf8") === "version: v2\n");
      await finding.waitFor({ state: "detached" });
      assert.equal(await page.locator(".markers-panel .monaco-list-row", { hasText: "buf.yaml" }).count(), 0);
    });
  });
});
