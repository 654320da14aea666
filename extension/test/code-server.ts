// A real VS Code for end-to-end tests: code-server (VS Code 1.99 in the browser), installed
// offline by scripts/install-code-server.sh, with our VSIX installed into a fresh
// extensions folder, opened on a folder and driven in Debian's chromium by playwright-core.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { chromium, type Browser, type Locator, type Page } from "playwright-core";
import { freePort } from "../src/router-process.js";

export { freePort };

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** How long one step of a walk may take on a loaded machine (also playwright's default timeout). */
export const STEP_MS = 120_000;
/** Where a failing step leaves its screenshot. */
export const resultsDir = path.join(repoRoot, "test-results");

/**
 * User settings for a walk that types into .proto files: no welcome page, tips or trust
 * prompt in the way, no auto-save, and nothing the editor inserts or suggests on its own
 * (closing brackets, quotes, suggestions), so what the test types is what the file holds.
 */
export const TYPING_SETTINGS: Readonly<Record<string, unknown>> = {
  "workbench.startupEditor": "none",
  "workbench.tips.enabled": false,
  "workbench.enableExperiments": false,
  "extensions.ignoreRecommendations": true,
  "telemetry.telemetryLevel": "off",
  "security.workspace.trust.enabled": false,
  "files.autoSave": "off",
  "editor.autoClosingBrackets": "never",
  "editor.autoClosingQuotes": "never",
  "editor.quickSuggestions": { other: false, comments: false, strings: false },
  "editor.suggestOnTriggerCharacters": false,
  "editor.acceptSuggestionOnEnter": "off",
};

/** 1-based line of the first line of `text` that contains `needle`. */
export function lineOf(text: string, needle: string): number {
  const i = text.split("\n").findIndex((l) => l.includes(needle));
  assert.ok(i >= 0, `fixture has no ${needle}`);
  return i + 1;
}

/** The code-server executable: $GRPCROUTER_CODE_SERVER, else what scripts/install-code-server.sh gives. */
export function codeServerPath(): string {
  const fromEnv = process.env.GRPCROUTER_CODE_SERVER;
  if (fromEnv) return fromEnv;
  const installer = path.join(repoRoot, "scripts", "install-code-server.sh");
  if (!existsSync(installer)) throw new Error(`no code-server: set GRPCROUTER_CODE_SERVER or provide ${installer}`);
  // Idempotent: prints the path at once when it is installed (scripts/ensure-test-deps.sh runs it first).
  const r = spawnSync("bash", [installer], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], timeout: 15 * 60_000 });
  const bin = r.stdout.trim().split("\n").pop() ?? "";
  if (r.status !== 0 || !existsSync(bin)) throw new Error(`install-code-server.sh failed (exit ${r.status}): ${r.stdout}`);
  return bin;
}

/** Where buildVsix(outDir) stages the built extension (the VSIX's contents, unpacked). */
export const stagedExtension = (outDir: string) => path.join(outDir, "extension-root");

/**
 * Builds the VSIX the way `npm run package` does (linux-x64) into `outDir`, staging the build
 * in stagedExtension(outDir), never in the checkout: tests running side by side share nothing.
 */
export async function buildVsix(outDir: string): Promise<string> {
  const pack = (await import(pathToFileURL(path.join(repoRoot, "extension/scripts/package.mjs")).href)) as {
    buildVsix(target: string, out: string, options: { stage: string }): Promise<string>;
  };
  const stage = stagedExtension(outDir);
  mkdirSync(stage, { recursive: true });
  return pack.buildVsix("linux-x64", outDir, { stage });
}

export interface CodeServer {
  url: string;
  userDataDir: string;
  logs: string[];
  stop(): Promise<void>;
}

/** Installs `vsix` into fresh folders and serves VS Code on a free loopback port. */
export async function startCodeServer(opts: { bin: string; vsix: string; folder: string; settings?: Record<string, unknown> }): Promise<CodeServer> {
  const home = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-vscode-"));
  const extensionsDir = path.join(home, "extensions");
  const userDataDir = path.join(home, "user-data");
  mkdirSync(path.join(userDataDir, "User"), { recursive: true });
  writeFileSync(path.join(userDataDir, "User", "settings.json"), JSON.stringify(opts.settings ?? {}, null, 2));
  const install = spawnSync(opts.bin, ["--install-extension", opts.vsix, "--extensions-dir", extensionsDir, "--user-data-dir", userDataDir], {
    encoding: "utf8",
    timeout: 120_000,
    env: { ...process.env, HOME: home },
  });
  if (install.status !== 0) throw new Error(`code-server --install-extension failed: ${install.stdout}${install.stderr}`);

  const port = await freePort();
  const logs: string[] = [];
  const child: ChildProcess = spawn(
    opts.bin,
    [
      "--auth",
      "none",
      "--bind-addr",
      `127.0.0.1:${port}`,
      "--disable-telemetry",
      "--disable-update-check",
      "--disable-workspace-trust",
      "--disable-getting-started-override",
      "--extensions-dir",
      extensionsDir,
      "--user-data-dir",
      userDataDir,
      opts.folder,
    ],
    // Its own process group, so that stop() also ends the extension host and our server.
    { detached: true, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, HOME: home } },
  );
  const onData = (b: Buffer) => logs.push(...b.toString("utf8").split("\n").filter(Boolean));
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.pid) {
      const gone = new Promise((r) => child.once("exit", r));
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {
        // already gone
      }
      await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))]);
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        // ended on SIGTERM
      }
    }
    rmSync(home, { recursive: true, force: true });
  };
  try {
    await waitForHttp(`${url}/healthz`, 120_000, child);
  } catch (e) {
    await stop();
    throw new Error(`${(e as Error).message}\n${logs.slice(-20).join("\n")}`);
  }
  return { url: `${url}/?folder=${encodeURIComponent(opts.folder)}`, userDataDir, logs, stop };
}

/**
 * Opens the workbench's quick input with a key (F1, Control+P, Control+G) and returns its text box.
 * A key pressed while a webview (the debug panel) has the focus reaches the workbench only through
 * the webview's forwarding, which code-server at times drops (CI saw Ctrl+P lost after a click
 * in the panel): the focus is given back to the workbench's own page first, and the key is
 * pressed again if the box still has not shown.
 */
export async function openQuickInput(page: Page, key: string): Promise<Locator> {
  const input = page.locator(".quick-input-box input.input");
  const takeFocusFromWebview = () => page.evaluate("document.activeElement && document.activeElement.tagName === 'IFRAME' && document.activeElement.blur()");
  for (let attempt = 1; ; attempt++) {
    await takeFocusFromWebview();
    await page.keyboard.press(key);
    try {
      await input.waitFor({ state: "visible", timeout: attempt < 3 ? 10_000 : undefined });
      return input;
    } catch (e) {
      if (attempt >= 3) throw e;
    }
  }
}

/**
 * Does `act` until `shows` appears, as a user repeats what a busy editor let pass (a request
 * asked before the module compiled, a palette opened before the extension registered): each
 * try waits `tryMs` for it, `between` undoes a try that showed nothing (Escape, say), and after
 * `timeoutMs` the walk fails naming `what`.
 */
export async function repeatUntilShown(
  shows: Locator,
  what: string,
  act: () => Promise<void>,
  { tryMs = 5_000, between, timeoutMs = STEP_MS }: { tryMs?: number; between?: () => Promise<void>; timeoutMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await act();
    if (
      await shows.waitFor({ state: "visible", timeout: tryMs }).then(
        () => true,
        () => false,
      )
    )
      return;
    if (Date.now() > deadline) throw new Error(`${what} never showed`);
    await between?.();
  }
}

/** Opens a file of the folder by name with Quick Open (Ctrl+P), as a user would. */
export async function quickOpen(page: Page, name: string): Promise<void> {
  const input = await openQuickInput(page, "Control+P");
  await input.fill(name);
  // The file's own row is clicked, as paletteCommand does: Enter opens whichever row has
  // the focus, which (with the list still settling after an edit) was not always this one.
  const row = page.locator(".quick-input-list .monaco-list-row", { hasText: name }).first();
  await row.waitFor();
  await row.click();
  await page.locator(".tab.active", { hasText: name }).waitFor();
}

/**
 * Runs a command from the Command Palette (F1) by its title. The row of exactly this command is
 * clicked: Enter would run the top row, and recently used commands that also match (Check
 * Generated Code for "Generate") sort first.
 */
export async function paletteCommand(page: Page, title: string): Promise<void> {
  const input = await openQuickInput(page, "F1");
  await input.fill(`>${title}`);
  const exact = new RegExp(`^${title.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`);
  const row = page
    .locator(".quick-input-list .monaco-list-row")
    .filter({ has: page.locator(".label-name", { hasText: exact }) })
    .first();
  await row.waitFor();
  await row.click();
}

/**
 * One code-server with the VSIX on a folder and a chromium page on its workbench, for a walk
 * made of named steps: a failing step leaves a screenshot named after it in test-results/
 * (every step does with GRPCROUTER_E2E_SCREENSHOTS=1) and reports code-server's log tail.
 */
export class Workbench {
  vscode: CodeServer | undefined;
  browser: Browser | undefined;
  page!: Page;

  /** `shotPrefix` starts the screenshots' file names, one per test file. */
  constructor(private readonly shotPrefix: string) {}

  async open(opts: { vsix: string; folder: string; settings?: Record<string, unknown> }): Promise<void> {
    this.vscode = await startCodeServer({ bin: codeServerPath(), vsix: opts.vsix, folder: opts.folder, settings: opts.settings });
    this.browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: ["--no-sandbox"] });
    this.page = await this.browser.newPage({ viewport: { width: 1400, height: 900 } });
    this.page.setDefaultTimeout(STEP_MS);
    await this.page.goto(this.vscode.url);
    await this.page.locator(".monaco-workbench").waitFor();
  }

  async close(): Promise<void> {
    await this.browser?.close();
    await this.vscode?.stop();
  }

  /** Runs a step; on failure saves a screenshot named after it and rethrows with the log tail. */
  async step<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const file = path.join(resultsDir, `${this.shotPrefix}-${name.replace(/[^a-z0-9]+/gi, "-")}.png`);
    try {
      const result = await fn();
      if (process.env.GRPCROUTER_E2E_SCREENSHOTS) {
        mkdirSync(resultsDir, { recursive: true });
        await this.page.screenshot({ path: file });
      }
      return result;
    } catch (e) {
      mkdirSync(resultsDir, { recursive: true });
      await this.page?.screenshot({ path: file }).catch(() => {});
      const tail = this.vscode?.logs.slice(-15).join("\n") ?? "";
      throw new Error(`${name}: ${(e as Error).message}\n(screenshot: ${file})\ncode-server log tail:\n${tail}`);
    }
  }

  /** Runs a command by its title from the Command Palette. */
  runCommand(title: string): Promise<void> {
    return paletteCommand(this.page, title);
  }

  /** Opens a file of the folder by name with Quick Open (Ctrl+P), as a user would. */
  quickOpen(name: string): Promise<void> {
    return quickOpen(this.page, name);
  }
}

async function waitForHttp(url: string, timeoutMs: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`code-server exited (code ${child.exitCode})`);
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`code-server did not answer ${url} within ${timeoutMs / 1000} s`);
}
