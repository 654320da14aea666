import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RouterSet, RouterTargetError, lookupAll, parseRouterTargets, type RouterEndpoint } from "../../src/discovery/router-targets.js";
import { startDnsmasq } from "../../../scripts/test-support/dnsmasq.mjs";

describe("router targets", () => {
  it("parses lists, host:port, IPv6 and gRPC's dns: syntax with an optional DNS server", () => {
    assert.deepEqual(parseRouterTargets(["a:1, b:2", "[::1]:3"]), [
      { kind: "static", address: "a:1" },
      { kind: "static", address: "b:2" },
      { kind: "static", address: "[::1]:3" },
    ]);
    assert.deepEqual(parseRouterTargets("dns:///router-headless.ns.svc:9090"), [
      { kind: "dns", target: "dns:///router-headless.ns.svc:9090", name: "router-headless.ns.svc", port: 9090, dnsServer: undefined },
    ]);
    assert.deepEqual(parseRouterTargets("dns://10.0.0.10:5353/routers:7000")[0], {
      kind: "dns",
      target: "dns://10.0.0.10:5353/routers:7000",
      name: "routers",
      port: 7000,
      dnsServer: "10.0.0.10:5353",
    });
    assert.equal((parseRouterTargets("dns:routers")[0] as { port: number }).port, 443, "gRPC's default port");
  });

  it("names the target that is wrong", () => {
    assert.throws(
      () => parseRouterTargets("router"),
      (e: unknown) => e instanceof RouterTargetError && /"router": expected host:port/.test(e.message),
    );
    assert.throws(() => parseRouterTargets("a:99999"), /"a:99999": expected host:port/);
    assert.throws(() => parseRouterTargets("dns://dns.example/x:1"), /the DNS server "dns.example" must be an IP address/);
    assert.throws(() => parseRouterTargets(" , "), /names no router/);
  });
});

describe("RouterSet against a real DNS server (dnsmasq on loopback)", { timeout: 60_000 }, () => {
  it("resolves a name to every router, follows additions and removals, and keeps the last answer when DNS fails", async () => {
    const dns = await startDnsmasq({ "routers.test": ["127.0.0.2", "127.0.0.3", "127.0.0.4"] });
    const changes: Array<{ added: string[]; removed: string[] }> = [];
    const lines: string[] = [];
    const set = new RouterSet([`dns://${dns.server}/routers.test:9090`, "static.example:1"], {
      intervalMs: 3_600_000, // refreshed by hand below
      onChange: (a: RouterEndpoint[], r: RouterEndpoint[]) => changes.push({ added: a.map((e) => e.address).sort(), removed: r.map((e) => e.address).sort() }),
      logger: (l) => lines.push(l),
    });
    try {
      const first = await set.start();
      assert.deepEqual(first.map((e) => e.address).sort(), ["127.0.0.2:9090", "127.0.0.3:9090", "127.0.0.4:9090", "static.example:1"]);
      assert.equal(first.find((e) => e.address === "127.0.0.2:9090")!.authority, "routers.test", "TLS checks the name, not the address");

      await dns.set({ "routers.test": ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"] });
      await set.refresh();
      assert.deepEqual(changes.at(-1), { added: ["127.0.0.5:9090"], removed: [] });

      await dns.set({ "routers.test": ["127.0.0.2", "127.0.0.4", "127.0.0.5"] });
      await set.refresh();
      assert.deepEqual(changes.at(-1), { added: [], removed: ["127.0.0.3:9090"] });

      const before = changes.length;
      await dns.stop();
      await set.refresh();
      assert.equal(changes.length, before, "DNS down: no router is dropped");
      assert.equal(set.endpoints.length, 4);
      assert.equal(lines.filter((l) => l.includes("keeping the last answer")).length, 1);
      await set.refresh();
      assert.equal(lines.filter((l) => l.includes("keeping the last answer")).length, 1, "said once, not on every refresh");
    } finally {
      set.close();
      await dns.stop();
    }
  });

  it("refuses to start on a name that never resolved, and resolves IP literals without DNS", async () => {
    const dns = await startDnsmasq({ "other.test": ["127.0.0.9"] });
    try {
      const set = new RouterSet(`dns://${dns.server}/missing.test:9090`, { onChange: () => {}, logger: () => {} });
      await assert.rejects(set.start(), /missing\.test:9090.*could not be resolved/);
      set.close();
      assert.deepEqual(await lookupAll("127.0.0.7", undefined), ["127.0.0.7"]);
    } finally {
      await dns.stop();
    }
  });
});
