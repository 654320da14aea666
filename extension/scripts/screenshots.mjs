// Takes the PNG screenshots of the extension's Marketplace page (extension/media/*.png) in a
// real VS Code: code-server with the VSIX built from this tree, on a copy of
// test-fixtures/editor-workspace, in Debian's chromium. Run after a visible change:
//   node --conditions=@grpcrouter/source --import tsx extension/scripts/screenshots.mjs
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { buildVsix, codeServerPath, startCodeServer } from "../test/code-server.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const media = path.join(root, "extension", "media");
const tmp = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-shots-"));
const folder = path.join(tmp, "shop");
cpSync(path.join(root, "test-fixtures/editor-workspace"), folder, { recursive: true });
const vscode = await startCodeServer({
  bin: codeServerPath(),
  vsix: await buildVsix(tmp),
  folder,
  settings: {
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": false,
    "extensions.ignoreRecommendations": true,
    "telemetry.telemetryLevel": "off",
    "security.workspace.trust.enabled": false,
    "workbench.colorTheme": "Default Dark Modern",
    "window.zoomLevel": 0,
  },
});
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: ["--no-sandbox"] });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 760 } });
  page.setDefaultTimeout(120_000);
  await page.goto(vscode.url);
  await page.locator(".monaco-workbench").waitFor();
  const palette = async (prefix, text) => {
    await page.keyboard.press(prefix);
    await page.locator(".quick-input-box input.input").waitFor({ state: "visible" });
    await page.locator(".quick-input-box input.input").fill(text);
    await page.locator(".quick-input-list .monaco-list-row").first().waitFor();
    await page.keyboard.press("Enter");
  };
  await palette("Control+P", "orders.proto");
  await page.locator(".monaco-editor .codelens-decoration", { hasText: "Start router" }).first().waitFor();

  // 1. Lenses over the service and a hover on an rpc: its call kind and frame field number.
  // Over the name `Watch`: one character is the width of the line's text over its length.
  const line = page.locator(".monaco-editor .view-line", { hasText: "rpc Watch(" }).locator("span").first();
  const text = await line.innerText();
  const box = await line.boundingBox();
  const char = box.width / text.length;
  await page.mouse.move(box.x + (text.indexOf("Watch") + 2.5) * char, box.y + box.height / 2);
  await page.locator(".monaco-hover .hover-contents", { hasText: "Watch" }).first().waitFor();
  // The hover fades in; the picture waits for it to settle.
  await page.waitForTimeout(600);
  await page.screenshot({ path: path.join(media, "editor.png") });

  // 2. A router started from the palette: the status bar and the lens count its instances.
  await page.mouse.move(5, 700);
  await palette("F1", ">gRPC Router: Start Router");
  await page.locator('.statusbar-item[id$="grpcrouter.router"]', { hasText: /Router: 127\.0\.0\.1:\d+/ }).waitFor();
  await page.locator(".monaco-editor .codelens-decoration", { hasText: "instances registered" }).first().waitFor();
  await palette("F1", ">gRPC Router: Show Output");
  await page.locator(".output-view, .panel .monaco-editor").first().waitFor();
  await page.screenshot({ path: path.join(media, "router.png") });
  console.log(`screenshots: ${path.relative(process.cwd(), media)}/editor.png, router.png`);
} finally {
  await browser.close();
  await vscode.stop();
  rmSync(tmp, { recursive: true, force: true });
}
