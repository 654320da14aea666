// `grpcrouter bridge --proxy URL` through a real HTTP CONNECT proxy (Debian's tinyproxy,
// started here on loopback, demanding basic credentials): the bridge registers through it
// and calls reach the target; a bad --proxy is a usage error naming the option.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { startTinyproxy, type Tinyproxy } from "../../scripts/test-support/tinyproxy.mjs";
import { cli, echoClient, echoModuleDir, echoSchemas, startPlainEcho, type CliProcess } from "./serve-helpers.js";

describe("grpcrouter bridge --proxy", { timeout: 240_000 }, () => {
  let tmp: string;
  let target: Awaited<ReturnType<typeof startPlainEcho>>;
  let proxy: Tinyproxy;
  const procs: CliProcess[] = [];

  before(async () => {
    tmp = echoModuleDir("grpcrouter-cli-proxy-");
    const schemas = await echoSchemas(path.join(tmp, "proto"));
    target = await startPlainEcho(schemas, "behind-proxy");
    proxy = await startTinyproxy(tmp, { user: "sidecar", password: "pr0xy" });
  });
  after(async () => {
    for (const p of procs) await p.stop();
    await proxy?.stop();
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
