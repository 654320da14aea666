// Several routers as a Kubernetes deployment runs them, on one machine: three `serve`
// processes on 127.0.0.2, .3 and .4 with the same port (as pods), a real DNS server on
// loopback answering the headless Service's name with their addresses, two sidecar bridges
// that resolve it, and a grpc-js client balancing over the routers (round robin, retrying
// UNAVAILABLE as a service config allows). The routers run with the Kubernetes base's config
// (wait-for-ready 5 s): a restarted router takes calls before the bridges are back with it. While one router restarts under load no call
// fails; a router added to DNS gets the instances within a re-resolution; one removed from
// DNS loses them.
import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { startDnsmasq, type Dnsmasq } from "../../scripts/test-support/dnsmasq.mjs";
import { cli, echoModuleDir, echoSchemas, freePort, healthOf, startPlainEcho, type CliProcess } from "./serve-helpers.js";

const NAME = "routers.test";
const debugProcs: CliProcess[] = [];
const dbg = (m: string) => process.env.TOPO_DEBUG && console.error(new Date().toISOString(), m);

async function until(what: string, cond: () => Promise<boolean>, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond().catch((e: Error) => (dbg(`${what}: ${e.message}`), false)))) {
    dbg(`not yet: ${what}`);
    if (Date.now() > deadline) {
      for (const p of debugProcs) dbg(`${p.child.spawnargs.slice(-8).join(" ")}\n${p.stderr.slice(-2500)}`);
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe("three routers behind DNS, two sidecars, one balancing client", { timeout: 300_000 }, () => {
  const tmp = echoModuleDir("grpcrouter-topology-");
  let port = 0;
  let dns: Dnsmasq;
  let target: { address: string; close(): Promise<void> };
  const routers = new Map<string, CliProcess>();
  const bridges: CliProcess[] = [];
  let client: grpc.Client;
  let Say: Awaited<ReturnType<typeof echoSchemas>>;

  // As deploy/kubernetes/base runs them: a router that has just started (or lost every
  // instance) lets a call wait a moment for the bridges to register instead of failing it.
  writeFileSync(path.join(tmp, "router.json"), JSON.stringify({ services: { "*": { waitForReady: { maxWaitMs: 5000 } } } }));
  const startRouter = async (host: string) => {
    const p = cli(
      ["serve", "--root", "proto", "--host", host, "--port", String(port), "--no-dashboard", "--no-watch", "--drain-grace", "5", "--config", "router.json"],
      tmp,
    );
    routers.set(host, p);
    debugProcs.push(p);
    await p.waitFor(/router listening on/);
    dbg(`router ${host} up`);
  };
  const serving = (host: string) => healthOf(`${host}:${port}`, "demo.v1.Echo").then((s) => s === "SERVING");

  before(async () => {
    port = await freePort("127.0.0.2");
    dns = await startDnsmasq({ [NAME]: ["127.0.0.2", "127.0.0.3", "127.0.0.4"] });
    for (const host of ["127.0.0.2", "127.0.0.3", "127.0.0.4"]) await startRouter(host);
    Say = await echoSchemas(path.join(tmp, "proto"));
    target = await startPlainEcho(Say, "pod");
    for (const id of ["sidecar-1", "sidecar-2"]) {
      const b = cli(
        ["bridge", "--target", target.address, "--router", `dns://${dns.server}/${NAME}:${port}`, "--dns-refresh", "1", "--root", "proto", "--id", id],
        tmp,
      );
      bridges.push(b);
      debugProcs.push(b);
      dbg(`bridge ${id} started`);
      await b.waitFor(new RegExp(`${id} registered demo\\.v1\\.Echo`));
      dbg(`bridge ${id} registered`);
    }
    // A client that knows the three routers, as one behind a Service's load balancer would.
    const serviceConfig = {
      loadBalancingConfig: [{ round_robin: {} }],
      methodConfig: [
        {
          name: [{ service: "demo.v1.Echo" }],
          retryPolicy: { maxAttempts: 4, initialBackoff: "0.05s", maxBackoff: "0.5s", backoffMultiplier: 2, retryableStatusCodes: ["UNAVAILABLE"] },
        },
      ],
    };
    client = new grpc.Client(`ipv4:127.0.0.2:${port},127.0.0.3:${port},127.0.0.4:${port}`, grpc.credentials.createInsecure(), {
      "grpc.service_config": JSON.stringify(serviceConfig),
    });
  });

  after(async () => {
    client?.close();
    for (const b of bridges) await b.stop(5_000).catch(() => {});
    for (const r of routers.values()) await r.stop(5_000).catch(() => {});
    await dns?.stop();
    await target?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  const say = (text: string) =>
    new Promise<string>((resolve, reject) =>
      client.makeUnaryRequest(
        "/demo.v1.Echo/Say",
        (m: unknown) => Buffer.from(toBinary(Say.message("SayRequest"), m as never)),
        (b: Buffer) => fromBinary(Say.message("SayResponse"), b),
        create(Say.message("SayRequest"), { text } as never),
        { deadline: Date.now() + 20_000 },
        (e, res) => (e ? reject(e) : resolve((res as unknown as { text: string }).text)),
      ),
    );

  it("every sidecar registers with every router the name resolves to", async () => {
    for (const host of ["127.0.0.2", "127.0.0.3", "127.0.0.4"]) await until(`${host} serving Echo`, () => serving(host));
  });

  it("no call fails while one router restarts under load", async () => {
    let ok = 0;
    const failures: string[] = [];
    let loading = true;
    const load = Promise.all(
      Array.from({ length: 6 }, async (_, w) => {
        for (let i = 0; loading; i++) {
          await say(`w${w}-${i}`).then(
            () => ok++,
            (e: Error) => failures.push(e.message),
          );
          // A call that fails at once must not starve the timers of the steps below.
          await new Promise((r) => setImmediate(r));
        }
      }),
    );
    try {
      await steps();
    } finally {
      loading = false;
      await load;
    }
    assert.deepEqual(failures, [], `${failures.length} of ${ok + failures.length} calls failed`);
    async function steps() {
      await until("calls flowing", async () => ok > 50);
      const old = routers.get("127.0.0.3")!;
      old.child.kill("SIGTERM");
      assert.equal(await old.exited, 0, "the router drained and exited cleanly");
      const before = ok;
      await until("calls flowing over the two others", async () => ok > before + 50);
      await startRouter("127.0.0.3");
      await until("the restarted router has the instances again", () => serving("127.0.0.3"));
      const after = ok;
      await until("calls flowing over all three", async () => ok > after + 50);
    }
  });

  it("a router added to DNS gets the instances within a re-resolution; one removed from DNS loses them", async () => {
    await startRouter("127.0.0.5");
    assert.equal(await serving("127.0.0.5"), false, "not in DNS yet: no instance");
    await dns.set({ [NAME]: ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"] });
    await until("the new router has the instances", () => serving("127.0.0.5"));
    await dns.set({ [NAME]: ["127.0.0.3", "127.0.0.4", "127.0.0.5"] });
    await until("the dropped router lost them", async () => (await healthOf(`127.0.0.2:${port}`, "demo.v1.Echo")) === "NOT_SERVING");
    for (const b of bridges) assert.match(b.stderr, /leaving router 127\.0\.0\.2:\d+: it is no longer in DNS/);
  });
});
