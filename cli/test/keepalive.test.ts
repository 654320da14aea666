// `serve --keepalive` and `bridge --keepalive` as real processes. A process frozen with
// SIGSTOP is what a sleeping laptop or a dead NAT flow looks like from the other end: it holds
// its connection and says nothing. The side that keeps alive notices within two intervals;
// once the frozen side runs again, the bridge is registered again, never refused.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { cli, echoClient, echoModuleDir, echoSchemas, startPlainEcho, type CliProcess } from "./serve-helpers.js";

const count = (text: string, re: RegExp) => text.match(new RegExp(re.source, "g"))?.length ?? 0;

describe("--keepalive on serve and bridge", { timeout: 240_000 }, () => {
  let tmp: string;
  let target: Awaited<ReturnType<typeof startPlainEcho>>;
  const procs: CliProcess[] = [];

  before(async () => {
    tmp = echoModuleDir("grpcrouter-cli-keepalive-");
    target = await startPlainEcho(await echoSchemas(path.join(tmp, "proto")), "kept-alive");
  });
  after(async () => {
    for (const p of procs) {
      p.child.kill("SIGCONT");
      await p.stop();
    }
    await target?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  async function serveAndBridge(serveArgs: string[], bridgeArgs: string[], id: string) {
    const serve = cli(["serve", "--root", "proto", "--port", "0", "--no-dashboard", "--no-watch", ...serveArgs], tmp);
    procs.push(serve);
    const port = (await serve.waitFor(/router listening on \S+:(\d+)/, "the router address"))[1]!;
    const bridge = cli(["bridge", "--root", "proto", "--router", `127.0.0.1:${port}`, "--target", target.address, "--id", id, ...bridgeArgs], tmp);
    procs.push(bridge);
    await bridge.waitFor(new RegExp(`${id} registered demo\\.v1\\.Echo`), "the bridge to register");
    return { serve, bridge, port };
  }

  it("serve --keepalive: a frozen bridge is dropped after two intervals, and registers again when it runs again", async () => {
    const { serve, bridge, port } = await serveAndBridge(["--keepalive", "0.5"], [], "sleeper");
    bridge.child.kill("SIGSTOP");
    await serve.waitFor(/closing instance "sleeper" of demo\.v1\.Echo .*no frame for \d+ ms \(heartbeat timeout\)/, "the router to drop the silent bridge");
    bridge.child.kill("SIGCONT");
    await serve.waitFor(/\ngrpcrouter: registered instance "sleeper"[\s\S]*\ngrpcrouter: registered instance "sleeper"/, "the bridge to register again");
    assert.equal(count(serve.output, /refused/), 0, serve.output);
    const client = echoClient(`127.0.0.1:${port}`, await echoSchemas(path.join(tmp, "proto")));
    try {
      assert.equal((await client.say("awake")).res.instanceId, "kept-alive");
    } finally {
      client.close();
    }
  });

  it("bridge --keepalive: a frozen router is given up after two intervals; when it runs again, the bridge is registered again, not refused", async () => {
    const { serve, bridge, port } = await serveAndBridge([], ["--keepalive", "0.5"], "watchful");
    serve.child.kill("SIGSTOP");
    await bridge.waitFor(/lost \(no frame from the router for \d+ ms \(keepalive 500 ms\)\)/, "the bridge to give up on the silent router");
    serve.child.kill("SIGCONT");
    // On loopback the router reads the bridge's close of the old connection as it wakes, so
    // the stale session is mostly gone before the new Hello (the replacement of one the
    // router still holds is liveness-netns.test.ts, where the close never arrives).
    await serve.waitFor(/\ngrpcrouter: registered instance "watchful"[\s\S]*\ngrpcrouter: registered instance "watchful"/, "the bridge to register again");
    assert.equal(count(serve.output, /refused|turned away/), 0, serve.output);
    const client = echoClient(`127.0.0.1:${port}`, await echoSchemas(path.join(tmp, "proto")));
    try {
      assert.equal((await client.say("back")).res.instanceId, "kept-alive");
    } finally {
      client.close();
    }
  });

  it("--keepalive that is not a positive number of seconds is a usage error naming the option", async () => {
    const badServe = cli(["serve", "--root", "proto", "--port", "0", "--no-dashboard", "--keepalive", "0"], tmp);
    const badBridge = cli(["bridge", "--root", "proto", "--router", "127.0.0.1:1", "--target", "127.0.0.1:2", "--keepalive", "soon"], tmp);
    procs.push(badServe, badBridge);
    assert.equal(await badServe.exited, 2);
    assert.match(badServe.stderr, /--keepalive 0: expected a number of seconds/);
    assert.equal(await badBridge.exited, 2);
    assert.match(badBridge.stderr, /--keepalive soon: expected a number of seconds/);
  });
});
