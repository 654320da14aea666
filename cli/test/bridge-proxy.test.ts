// `grpcrouter bridge --proxy URL` through a real HTTP CONNECT proxy (Debian's tinyproxy,
// started here on loopback, demanding basic credentials): the bridge registers through it
// and calls reach the target; a bad --proxy is a usage error naming the option.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { cli, echoClient, echoProtoDir, echoSchemas, startPlainEcho, type CliProcess } from "./serve-helpers.js";

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** tinyproxy in the foreground, demanding `user`:`password`; resolves once it accepts connections. */
async function tinyproxy(dir: string, user: string, password: string): Promise<{ port: number; log: () => string; child: ChildProcess }> {
  const port = await freePort();
  const conf = path.join(dir, "tinyproxy.conf");
  writeFileSync(
    conf,
    [`Port ${port}`, "Listen 127.0.0.1", "Timeout 600", "Allow 127.0.0.1", "LogLevel Info", `BasicAuth ${user} ${password}`].join("\n") + "\n",
  );
  let out = "";
  const child = spawn("tinyproxy", ["-d", "-c", conf], { stdio: ["ignore", "pipe", "pipe"] });
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const until = Date.now() + 20_000;
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const probe = createServer().listen(port, "127.0.0.1");
      probe.once("listening", () => probe.close(() => resolve(false)));
      probe.once("error", () => resolve(true));
    });
    if (up) break;
    if (child.exitCode !== null || Date.now() > until) throw new Error(`tinyproxy did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { port, log: () => out, child };
}

describe("grpcrouter bridge --proxy", { timeout: 240_000 }, () => {
  let tmp: string;
  let target: Awaited<ReturnType<typeof startPlainEcho>>;
  let proxy: Awaited<ReturnType<typeof tinyproxy>>;
  const procs: CliProcess[] = [];

  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-cli-proxy-"));
    cpSync(echoProtoDir, path.join(tmp, "proto"), { recursive: true });
    const schemas = await echoSchemas(path.join(tmp, "proto"));
    target = await startPlainEcho(schemas, "behind-proxy");
    proxy = await tinyproxy(tmp, "sidecar", "pr0xy");
  });
  after(async () => {
    for (const p of procs) await p.stop();
    proxy?.child.kill("SIGTERM");
    await target?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("registers through an HTTP CONNECT proxy with credentials, and calls reach the target", async () => {
    const serve = cli(["serve", "--root", "proto", "--port", "0", "--no-dashboard", "--no-watch"], tmp);
    procs.push(serve);
    const port = (await serve.waitFor(/router listening on \S+:(\d+)/, "the router address"))[1]!;
    const bridge = cli(
      [
        "bridge",
        "--root",
        "proto",
        "--router",
        `127.0.0.1:${port}`,
        "--target",
        target.address,
        "--id",
        "proxied",
        "--proxy",
        `http://sidecar:pr0xy@127.0.0.1:${proxy.port}`,
      ],
      tmp,
    );
    procs.push(bridge);
    await bridge.waitFor(/proxied registered demo\.v1\.Echo/, "the bridge to register");
    assert.match(
      bridge.stderr,
      new RegExp(`dialling router 127\\.0\\.0\\.1:${port} through proxy http://127\\.0\\.0\\.1:${proxy.port}\\n`),
      "the log names the proxy, not its password",
    );
    assert.doesNotMatch(bridge.output, /pr0xy/);
    assert.match(proxy.log(), new RegExp(`CONNECT 127\\.0\\.0\\.1:${port} `), "the Register stream went through the proxy");
    const client = echoClient(`127.0.0.1:${port}`, await echoSchemas(path.join(tmp, "proto")));
    try {
      const { res } = await client.say("hi");
      assert.equal(res.instanceId, "behind-proxy");
    } finally {
      client.close();
    }
  });

  it("a --proxy that is not an http:// URL is a usage error naming the option", async () => {
    const bad = cli(["bridge", "--root", "proto", "--router", "127.0.0.1:1", "--target", "127.0.0.1:2", "--proxy", "socks5://127.0.0.1:1080"], tmp);
    procs.push(bad);
    assert.equal(await bad.exited, 2);
    assert.match(bad.stderr, /--proxy socks5:\/\/127\.0\.0\.1:1080: only http:\/\/ proxies \(HTTP CONNECT\) are supported/);
  });
});
