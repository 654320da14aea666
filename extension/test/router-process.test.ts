// "Start Router" without VS Code: RouterProcess launches the real bundled CLI's `serve` on a
// proto module and reports the router's state as the status bar shows it.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { watchRouterState } from "../src/admin-client.js";
import { RouterProcess, type RouterStatus } from "../src/router-process.js";
import { repoRoot } from "./code-server.js";

/** Polls `check` until it holds (generous: a loaded machine is slow, never a failure). */
async function until(check: () => Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("RouterProcess (Start Router / Stop Router)", () => {
  let tmp: string;
  let cli: string;
  let root: string;
  let bufEnv: Record<string, string>;

  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-router-"));
    const build = (await import(pathToFileURL(path.join(repoRoot, "extension/scripts/build.mjs")).href)) as {
      buildCli(outfile: string): Promise<string | undefined>;
      bufBinary(): string;
    };
    // The extension hands the router the buf it ships (GRPCROUTER_BUF); so does this test.
    bufEnv = { GRPCROUTER_BUF: build.bufBinary() };
    cli = path.join(tmp, "grpcrouter.js");
    assert.ok(await build.buildCli(cli), "cli/src/main.ts is missing");
    cpSync(path.join(repoRoot, "test-fixtures/editor-workspace"), path.join(tmp, "ws"), { recursive: true });
    root = path.join(tmp, "ws", "proto");
  });

  after(() => rmSync(tmp, { recursive: true, force: true }));

  it("says plainly when the extension's CLI is missing", async () => {
    const router = new RouterProcess();
    const s = await router.start({ cli: path.join(tmp, "nope.js"), root, port: 0, cwd: root, log: () => {} });
    assert.equal(s.state, "failed");
    assert.match((s as { reason: string }).reason, /CLI is missing/);
  });

  it("starts a router that listens, then stops it", async () => {
    const router = new RouterProcess();
    const seen: RouterStatus["state"][] = [];
    router.onChange((s) => seen.push(s.state));
    const lines: string[] = [];
    const s = await router.start({ cli, root, port: 0, cwd: root, log: (l) => lines.push(l), env: bufEnv, readyTimeoutMs: 60_000 });
    try {
      assert.equal(s.state, "running", `${JSON.stringify(s)}\n${lines.join("\n")}`);
      const { port, adminUrl } = s as { port: number; adminUrl?: string };
      // The router's dashboard, whose event stream the extension watches (from serve's output).
      assert.match(adminUrl ?? "", /^http:\/\/127\.0\.0\.1:\d+\/$/, lines.join("\n"));
      const watch = watchRouterState(adminUrl!);
      const counts = () => watch.state.counts() ?? {};
      // A real router of this module: it lists the module's service, with no instance
      // registered yet (what the code lens shows).
      const address = `127.0.0.1:${port}`;
      await until(async () => watch.state.counts() !== undefined, "the router's snapshot");
      assert.deepEqual(watch.state.counts(), { "shop.v1.Orders": 0 });
      // An instance registers (the CLI's bridge sidecar, a real Register stream): counted;
      // it goes away: no longer counted.
      const bridge = spawn(process.execPath, [cli, "bridge", "--target", "127.0.0.1:9", "--router", address, "--root", root], {
        env: { ...process.env, ...bufEnv },
        stdio: ["ignore", "pipe", "pipe"],
      });
      try {
        await until(async () => counts()["shop.v1.Orders"] === 1, "the bridge to be counted");
      } finally {
        bridge.kill("SIGKILL");
      }
      await until(async () => counts()["shop.v1.Orders"] === 0, "the bridge to go");
      watch.close();
      assert.equal(seen[0], "starting");
    } finally {
      router.stop();
    }
    assert.equal(router.current.state, "stopped");
  });
});
