// `grpcrouter bridge --transport` and `grpcrouter serve --no-websocket`: the sidecar registers
// over WebSocket and calls reach its target; a router started with --no-websocket refuses
// the Upgrade (the bridge says why and keeps retrying); a bad --transport is a usage error.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { cli, echoClient, echoModuleDir, echoSchemas, startPlainEcho, type CliProcess } from "./serve-helpers.js";

describe("grpcrouter bridge --transport", { timeout: 240_000 }, () => {
  let tmp: string;
  let target: Awaited<ReturnType<typeof startPlainEcho>>;
  const procs: CliProcess[] = [];

  before(async () => {
    tmp = echoModuleDir("grpcrouter-cli-ws-");
    target = await startPlainEcho(await echoSchemas(path.join(tmp, "proto")), "over-websocket");
  });
  after(async () => {
    for (const p of procs) await p.stop();
    await target?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("--transport websocket registers over WebSocket and calls reach the target; serve --no-websocket refuses it", async () => {
    const serve = cli(["serve", "--root", "proto", "--port", "0", "--no-dashboard", "--no-watch"], tmp);
    procs.push(serve);
    const port = (await serve.waitFor(/router listening on \S+:(\d+)/, "the router address"))[1]!;
    const bridge = cli(
      ["bridge", "--root", "proto", "--router", `127.0.0.1:${port}`, "--target", target.address, "--id", "ws-sidecar", "--transport", "websocket"],
      tmp,
    );
    procs.push(bridge);
    await bridge.waitFor(/ws-sidecar registered demo\.v1\.Echo/, "the bridge to register");
    const client = echoClient(`127.0.0.1:${port}`, await echoSchemas(path.join(tmp, "proto")));
    try {
      const { res } = await client.say("hi");
      assert.equal(res.instanceId, "over-websocket");
    } finally {
      client.close();
    }

    const closed = cli(["serve", "--root", "proto", "--port", "0", "--no-dashboard", "--no-watch", "--no-websocket"], tmp);
    procs.push(closed);
    const closedPort = (await closed.waitFor(/router listening on \S+:(\d+)/, "the router address"))[1]!;
    const refused = cli(
      ["bridge", "--root", "proto", "--router", `127.0.0.1:${closedPort}`, "--target", target.address, "--id", "ws-refused", "--transport", "websocket"],
      tmp,
    );
    procs.push(refused);
    await refused.waitFor(
      /lost \(UNAVAILABLE: .*over WebSocket: HTTP 404 Not Found: this router does not take WebSocket connections/,
      "the refusal in the log",
    );
  });

  it("a --transport that is not auto, h2 or websocket is a usage error naming the option", async () => {
    const bad = cli(["bridge", "--root", "proto", "--router", "127.0.0.1:1", "--target", "127.0.0.1:2", "--transport", "http3"], tmp);
    procs.push(bad);
    assert.equal(await bad.exited, 2);
    assert.match(bad.stderr, /--transport http3: expected auto, h2, websocket/);
  });
});
