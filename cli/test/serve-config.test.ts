// `grpcrouter serve --config FILE` with real processes: two plain Echo servers behind
// `grpcrouter bridge` (labels pool=a / pool=b), a config file choosing a subset and a rate
// limit, edited while the router runs; a broken edit keeps the running settings.
import assert from "node:assert/strict";
import { renameSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { cli, echoClient, echoModuleDir, echoSchemas, routerAddress, startPlainEcho, type CliProcess } from "./serve-helpers.js";

const tenant = (t: string) => {
  const m = new grpc.Metadata();
  m.set("x-tenant", t);
  return m;
};

describe("grpcrouter serve --config", { timeout: 240_000 }, () => {
  let tmp: string;
  let configFile: string;
  let serve: CliProcess;
  const bridges: CliProcess[] = [];
  const plains: Array<Awaited<ReturnType<typeof startPlainEcho>>> = [];
  let schemas: Awaited<ReturnType<typeof echoSchemas>>;
  let client: ReturnType<typeof echoClient>;

  // Written aside and renamed over the file, as editors save: the router watches the folder.
  const writeConfig = (services: unknown) => {
    writeFileSync(`${configFile}.tmp`, JSON.stringify({ services }, null, 2));
    renameSync(`${configFile}.tmp`, configFile);
  };
  /** Who served `n` Say calls, in a set. */
  let probes = 0;
  const servedBy = async (n: number): Promise<Set<string>> => {
    const ids = new Set<string>();
    // A tenant per call: these probes must not use up a rate-limited tenant's burst.
    for (let i = 0; i < n; i++) ids.add((await client.say(`call ${i}`, tenant(`probe-${probes++}`))).res.instanceId as string);
    return ids;
  };
  /** Waits until the router's output has one more match of `re` than it had before. */
  const nextLog = async (re: RegExp, what: string, action: () => void) => {
    const count = () => (serve.output.match(new RegExp(re.source, "g")) ?? []).length;
    const before = count();
    action();
    const end = Date.now() + 60_000;
    while (count() <= before) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}:\n${serve.output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  before(async () => {
    tmp = echoModuleDir("grpcrouter-serve-config-");
    schemas = await echoSchemas(path.join(tmp, "proto"));
    configFile = path.join(tmp, "router.json");
  });

  after(async () => {
    client?.close();
    for (const b of bridges) await b.stop();
    await serve?.stop();
    for (const p of plains) await p.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("refuses to start with an invalid config, naming the file and the field", async () => {
    writeConfig({ "demo.v1.Echo": { balancer: { strategy: "x" } } });
    const bad = cli(["serve", "--root", "proto", "--port", "0", "--no-dashboard", "--no-watch", "--config", "router.json"], tmp);
    assert.equal(await bad.exited, 1);
    assert.match(bad.stderr, /grpcrouter serve: router\.json: services\["demo\.v1\.Echo"\]\.balancer\.strategy: unknown strategy "x" \(one of round_robin, /);
    assert.doesNotMatch(bad.stdout, /listening/);
  });

  it("applies the config, re-applies edits without dropping instances, and keeps it on a bad edit", async () => {
    writeConfig({
      "*": { balancer: { strategy: "subset", selector: { pool: "a" } } },
      "demo.v1.Echo": { rateLimit: { methods: { Count: { perSecond: 0.001, burst: 2, key: { metadata: "x-tenant" } } } } },
    });
    serve = cli(["serve", "--root", "proto", "--port", "0", "--no-dashboard", "--config", "router.json"], tmp);
    const router = await routerAddress(serve);
    for (const [name, pool] of [
      ["plain-a", "a"],
      ["plain-b", "b"],
    ] as const) {
      const plain = await startPlainEcho(schemas, name);
      plains.push(plain);
      const b = cli(["bridge", "--target", plain.address, "--router", router, "--root", "proto", "--id", name, "--label", `pool=${pool}`], tmp);
      bridges.push(b);
      await b.waitFor(new RegExp(`${name} registered demo\\.v1\\.Echo`), `${name} to register`);
    }
    client = echoClient(router, schemas);

    // "*" gives the subset: only pool=a serves.
    assert.deepEqual(await servedBy(10), new Set(["plain-a"]));

    // Edit: subset pool=b and a rate limit on Say for every tenant.
    await nextLog(/config reloaded from router\.json/, "the config reload", () =>
      writeConfig({
        "*": { balancer: { strategy: "subset", selector: { pool: "b" } } },
        "demo.v1.Echo": { rateLimit: { methods: { Say: { perSecond: 0.001, burst: 3, key: { metadata: "x-tenant" } } } } },
      }),
    );
    const r = await Promise.allSettled([1, 2, 3, 4, 5].map((i) => client.say(`t${i}`, tenant("acme"))));
    const ok = r.filter((x) => x.status === "fulfilled") as Array<PromiseFulfilledResult<{ res: Record<string, unknown> }>>;
    assert.equal(ok.length, 3, JSON.stringify(r.map((x) => x.status)));
    assert.ok(ok.every((x) => x.value.res.instanceId === "plain-b"));
    const refused = (r.find((x) => x.status === "rejected") as PromiseRejectedResult).reason as grpc.ServiceError;
    assert.equal(refused.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.match(refused.details, /rate limit of demo\.v1\.Echo\/Say exceeded \(0\.001 calls\/s, burst 3\) for x-tenant="acme"/);
    // Another tenant still has its burst.
    assert.equal((await client.say("other", tenant("globex"))).res.instanceId, "plain-b");

    // A broken edit: the error names the file and field, the running settings stay.
    await nextLog(/config reload failed; still using the previous configuration/, "the failed reload", () =>
      writeConfig({ "demo.v1.Echo": { balancer: { strategy: "split", splits: [{ labels: { pool: "a" }, percent: 150 }] } } }),
    );
    assert.match(serve.stderr, /router\.json: services\["demo\.v1\.Echo"\]\.balancer\.splits\[0\]\.percent: must be a number between 0 and 100/);
    await assert.rejects(client.say("again", tenant("acme")), (e: grpc.ServiceError) => e.code === grpc.status.RESOURCE_EXHAUSTED);
    assert.deepEqual(await servedBy(5), new Set(["plain-b"]));

    // Back to defaults (round robin, no limit): both instances serve, none re-registered.
    await nextLog(/config reloaded from router\.json/, "the config reload", () => writeConfig({}));
    assert.deepEqual(await servedBy(10), new Set(["plain-a", "plain-b"]));
    assert.equal((await client.say("free again", tenant("acme"))).res.instanceId !== undefined, true);
    assert.doesNotMatch(serve.output, /deregistered/);
  });
});
