// The editing features end to end in a real VS Code (code-server) in Debian's chromium, with the
// packaged VSIX: colours of a .proto file (TextMate grammar and semantic tokens), Format
// Document with buf format, buf lint findings of buf.yaml in the Problems panel, and a save
// made while the extension is still starting. A failing step leaves a screenshot in test-results/.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { unzipSync } from "fflate";
import { buildVsix, repoRoot, STEP_MS, stagedExtension, TYPING_SETTINGS, Workbench } from "./code-server.js";

// The page's globals, for the functions that run in chromium (this project has no DOM lib).
declare const document: { querySelectorAll(selector: string): Iterable<{ textContent: string | null }> };
declare function getComputedStyle(element: unknown): { color: string };

// Typing settings, and no indentation added by the editor: the format test checks buf's.
const SETTINGS = { ...TYPING_SETTINGS, "editor.autoIndent": "none" };

/** One code-server with the VSIX on a folder, a chromium page on it, and what these walks do there. */
class Session extends Workbench {
  constructor() {
    super("editor-e2e");
  }

  /** The colour the editor paints the first visible token whose text is `text` (spaces as typed). */
  async colourOf(text: string): Promise<string> {
    const found = await this.page.waitForFunction(
      (t) => {
        const spans = [...document.querySelectorAll(".monaco-editor .view-line span span")];
        // Monaco renders spaces as no-break spaces.
        const el = spans.find((e) => (e.textContent ?? "").replace(/\u00a0/g, " ").trim() === t);
        return el ? getComputedStyle(el).color : undefined;
      },
      text,
      { timeout: STEP_MS },
    );
    return (await found.jsonValue()) as string;
  }
}

/** What the buf inside the VSIX prints for a file. */
function byBuf(buf: string, text: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-fmt-"));
  try {
    writeFileSync(path.join(dir, "x.proto"), text);
    return execFileSync(buf, ["format", "x.proto"], { cwd: dir, encoding: "utf8" });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("editing .proto files in a real VS Code", { timeout: 20 * 60_000 }, () => {
  let tmp: string;
  let vsix: string;

  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-editor-e2e-"));
    vsix = await buildVsix(tmp);
  });

  after(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("ships the grammar the manifest names in the VSIX", () => {
    const names: string[] = [];
    unzipSync(readFileSync(vsix), { filter: (f) => (names.push(f.name), false) });
    const manifest = JSON.parse(readFileSync(path.join(repoRoot, "package.json"), "utf8")) as { contributes: { grammars: { path: string }[] } };
    for (const g of manifest.contributes.grammars) assert.ok(names.includes(`extension/${path.posix.normalize(g.path)}`), `${g.path} is not in the VSIX`);
  });

  describe("a module with lint rules", () => {
    const s = new Session();
    let folder: string;
    const orders = () => path.join(folder, "proto/shop/v1/orders.proto");

    before(async () => {
      folder = path.join(tmp, "linted");
      cpSync(path.join(repoRoot, "test-fixtures/editor-workspace"), folder, { recursive: true });
      writeFileSync(path.join(folder, "proto/buf.yaml"), "version: v2\nlint:\n  use:\n    - FIELD_LOWER_SNAKE_CASE\n");
      const money = path.join(folder, "proto/shop/v1/money.proto");
      writeFileSync(money, readFileSync(money, "utf8").replace("int64 units = 2;", "int64 Units = 2;"));
      await s.open({ vsix, folder, settings: { ...SETTINGS, "grpcrouter.generateOnSave": false } });
    });

    after(() => s.close());

    it("colours keywords, types, names, strings and comments of a .proto", async () => {
      await s.step("open orders.proto", async () => {
        await s.quickOpen("orders.proto");
        await s.page.locator(".monaco-editor .view-lines", { hasText: "service Orders" }).waitFor();
      });
      await s.step("read token colours", async () => {
        const plain = await s.page
          .locator(".monaco-editor .view-lines")
          .first()
          .evaluate((el) => getComputedStyle(el).color);
        const keyword = await s.colourOf("message");
        const comment = await s.colourOf("// Who placed an order.");
        const str = await s.colourOf('"proto3"');
        const scalar = await s.colourOf("string");
        const number = await s.colourOf("1");
        const colours = { plain, keyword, comment, str, scalar, number };
        // Each kind of token has a colour of its own, none of them the plain text colour.
        for (const [kind, c] of Object.entries(colours)) if (kind !== "plain") assert.notEqual(c, plain, `${kind} is not coloured: ${JSON.stringify(colours)}`);
        assert.equal(new Set([keyword, comment, str, number]).size, 4, JSON.stringify(colours));
        // Semantic tokens from the descriptors: the enum value named in the option's value is
        // coloured like the enum values where they are declared (the grammar alone cannot know
        // that BALANCER_CONSISTENT_HASH is one).
        await s.page.keyboard.press("Control+End");
        const declared = await s.colourOf("STATUS_OPEN");
        await s.page.keyboard.press("Control+Home");
        const deadline = Date.now() + STEP_MS;
        let used = await s.colourOf("BALANCER_CONSISTENT_HASH");
        while (used !== declared && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 250));
          used = await s.colourOf("BALANCER_CONSISTENT_HASH");
        }
        assert.equal(used, declared, "the enum value in the option is not coloured as an enum value");
      });
    });

    it("shows buf lint findings of buf.yaml in the Problems panel, with the rule id", async () => {
      await s.step("lint in Problems", async () => {
        await s.page.keyboard.press("Control+Shift+M");
        const row = s.page.locator(".markers-panel .monaco-list-row", { hasText: "FIELD_LOWER_SNAKE_CASE" }).first();
        await row.waitFor();
        const text = await row.innerText();
        assert.match(text, /Units/);
        assert.match(text, /buf lint/);
      });
    });

    it("formats the document with buf format", async () => {
      const original = readFileSync(orders(), "utf8");
      await s.step("mess up a line and format", async () => {
        await s.page.locator(".monaco-editor .view-lines").first().click();
        await s.page.keyboard.press("Control+G");
        await s.page.locator(".quick-input-box input.input").waitFor({ state: "visible" });
        const line = original.split("\n").findIndex((l) => l.includes("string name = 2;")) + 1;
        await s.page.keyboard.type(String(line));
        await s.page.keyboard.press("Enter");
        await s.page.keyboard.press("End");
        await s.page.keyboard.type("    int32   extra=9;");
        await s.page.locator(".monaco-editor .view-lines", { hasText: "int32   extra=9;" }).waitFor();
        await s.runCommand("Format Document");
        await s.page.locator(".monaco-editor .view-lines", { hasText: "int32 extra = 9;" }).waitFor();
        await s.page.keyboard.press("Control+S");
        const want = byBuf(
          path.join(stagedExtension(tmp), "server/dist/bin/buf"),
          original.replace("string name = 2;", "string name = 2;    int32   extra=9;"),
        );
        const deadline = Date.now() + STEP_MS;
        while (readFileSync(orders(), "utf8") !== want && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
        assert.equal(readFileSync(orders(), "utf8"), want);
      });
    });

    it("notices a change on disk to a file that is not open", async () => {
      const money = path.join(folder, "proto/shop/v1/money.proto");
      const before = readFileSync(money, "utf8");
      await s.step("rename a message on disk", async () => {
        writeFileSync(money, before.replace("message Money {", "message Cash {"));
        await s.page.keyboard.press("Control+Shift+M");
        // The compile error in orders.proto (open) about the type money.proto no longer declares.
        const aboutMoney = s.page.locator(".markers-panel .monaco-list-row", { hasText: /\bMoney\b/ });
        await aboutMoney.first().waitFor();
        writeFileSync(money, before);
        await aboutMoney.first().waitFor({ state: "detached" });
      });
    });
  });

  describe("a save while the extension starts", () => {
    const s = new Session();
    let folder: string;

    before(async () => {
      // No buf.yaml: nothing activates the extension until a .proto is opened, so the save below
      // lands while it starts its language server.
      folder = path.join(tmp, "fresh");
      cpSync(path.join(repoRoot, "test-fixtures/editor-workspace/proto"), folder, { recursive: true });
      rmSync(path.join(folder, "buf.yaml"));
      await s.open({ vsix, folder, settings: SETTINGS });
    });

    after(() => s.close());

    it("generates on the first save, made the moment the file opens", async () => {
      const router = path.join(folder, "gen/shop/v1/orders_router.proto");
      await s.step("open and save at once", async () => {
        await s.quickOpen("orders.proto");
        await s.page.locator(".monaco-editor .view-lines", { hasText: "service Orders" }).waitFor();
        await s.page.locator(".monaco-editor .view-lines").first().click();
        await s.page.keyboard.press("Control+S");
        const deadline = Date.now() + STEP_MS;
        while (!existsSync(router) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
        assert.ok(existsSync(router), "the first save generated nothing");
      });
    });
  });
});
