// Several routers that know each other: a bridge told of ONE router registers with every
// router of the deployment, learnt from that router's Welcome — the routers named with
// `serve --peer`, or resolved from `serve --peers-dns` (a real DNS server on loopback,
// standing in for a Kubernetes headless Service). The routers listen like pods: the same port
// on 127.0.0.2 and 127.0.0.3.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import path from "node:path";
import { after, describe, it } from "node:test";
import { startDnsmasq, type Dnsmasq } from "../../scripts/test-support/dnsmasq.mjs";
import { cli, echoModuleDir, echoSchemas, freePort, healthOf, startPlainEcho, until, type CliProcess } from "./serve-helpers.js";

describe("routers that know each other", { timeout: 180_000 }, () => {
  const tmp = echoModuleDir("grpcrouter-peers-");
  const procs: CliProcess[] = [];
  let dns: Dnsmasq | undefined;
  let target: { address: string; close(): Promise<void> } | undefined;
  after(async () => {
    for (const p of procs.reverse()) await p.stop(2_000).catch(() => {});
    await dns?.stop();
    await target?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  const serve = async (host: string, port: number, extra: string[]) => {
    const p = cli(["serve", "--root", "proto", "--host", host, "--port", String(port), "--no-dashboard", "--no-watch", ...extra], tmp);
    procs.push(p);
    await p.waitFor(/router listening on/);
    return p;
  };

  it("--peer: a bridge given one router also registers with the peer it names", async () => {
    target = await startPlainEcho(await echoSchemas(path.join(tmp, "proto")), "plain-1");
    const port = await freePort("127.0.0.2");
    await serve("127.0.0.3", port, []);
    await serve("127.0.0.2", port, ["--peer", `127.0.0.3:${port}`]);
    assert.equal(await healthOf(`127.0.0.3:${port}`, "demo.v1.Echo"), "NOT_SERVING", "no instance at the peer yet");
    const bridge = cli(["bridge", "--target", target.address, "--router", `127.0.0.2:${port}`, "--root", "proto", "--id", "peer-1"], tmp);
    procs.push(bridge);
    await until("the peer to have the instance", async () => (await healthOf(`127.0.0.3:${port}`, "demo.v1.Echo")) === "SERVING");
    assert.equal(await healthOf(`127.0.0.2:${port}`, "demo.v1.Echo"), "SERVING");
    await bridge.stop();
  });

  it("--peers-dns: the routers a name resolves to are told to bridges, and follow DNS", async () => {
    const port = await freePort("127.0.0.2");
    dns = await startDnsmasq({ "routers.test": ["127.0.0.2", "127.0.0.3"] });
    await serve("127.0.0.3", port, []);
    await serve("127.0.0.2", port, ["--peers-dns", `dns://${dns.server}/routers.test:${port}`]);
    const bridge = cli(["bridge", "--target", target!.address, "--router", `127.0.0.2:${port}`, "--root", "proto", "--id", "dns-1"], tmp);
    procs.push(bridge);
    await until("the resolved peer to have the instance", async () => (await healthOf(`127.0.0.3:${port}`, "demo.v1.Echo")) === "SERVING");
    await bridge.stop();
  });

  it("refuses a DNS name in --peer, naming it", async () => {
    const p = cli(["serve", "--root", "proto", "--port", "0", "--no-dashboard", "--peer", "dns:///routers:1"], tmp);
    assert.equal(await p.exited, 2);
    assert.match(p.stderr, /--peer\/--peers-dns: .*dns:\/\/\/routers:1: a DNS name goes in --peers-dns/);
  });
});
