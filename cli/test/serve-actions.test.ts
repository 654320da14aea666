// Operator actions and replay through `grpcrouter serve` (one router per service on a shared
// hub): the dashboard's POST /action drains a sidecar-bridged instance and calls stop reaching
// its server; the Admin service's Act pauses the service; a recorded call replays through
// the dashboard with edited JSON; --audit-log records each action with who did it.
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { ActionKind, createAdminClient } from "@grpcrouter/runtime";
import { cli, echoClient, echoModuleDir, echoSchemas, routerAddress, startPlainEcho, type CliProcess } from "./serve-helpers.js";

describe("operator actions through grpcrouter serve", { timeout: 180_000 }, () => {
  let tmp: string;
  const procs: CliProcess[] = [];
  const servers: Array<{ close(): Promise<void> }> = [];
  let router = "";
  let dashboard = "";
  let client: ReturnType<typeof echoClient>;

  before(async () => {
    tmp = echoModuleDir("grpcrouter-actions-");
    const schemas = await echoSchemas(path.join(tmp, "proto"));
    const serve = cli(["serve", "--root", "proto", "--port", "0", "--admin-port", "0", "--no-watch", "--audit-log", "audit.jsonl"], tmp);
    procs.push(serve);
    router = await routerAddress(serve);
    dashboard = (await serve.waitFor(/dashboard at (\S+)/, "the dashboard address"))[1]!;
    for (const name of ["one", "two"]) {
      const plain = await startPlainEcho(schemas, name);
      servers.push(plain);
      const bridge = cli(["bridge", "--target", plain.address, "--router", router, "--root", "proto", "--id", name], tmp);
      procs.push(bridge);
      await bridge.waitFor(new RegExp(`${name} registered demo\\.v1\\.Echo`), `${name} to register`);
    }
    client = echoClient(router, schemas);
  });

  after(async () => {
    client?.close();
    for (const p of procs.reverse()) await p.stop();
    for (const s of servers) await s.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const post = async (what: string, body: object) => {
    const res = await fetch(new URL(what, dashboard), { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const servedBy = async (n: number) => {
    const by = new Set<string>();
    for (let i = 0; i < n; i++) by.add((await client.say(`hi ${i}`)).headers.get("x-served-by")[0] as string);
    return by;
  };

  it("drains an instance from the dashboard: calls reach only the other one until undrained", async () => {
    assert.deepEqual([...(await servedBy(6))].sort(), ["one", "two"]);
    const r = await post("action", { kind: "drain", service: "demo.v1.Echo", instanceId: "one", note: "maintenance" });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.match(String(r.body.summary), /drained instance "one" of demo\.v1\.Echo/);
    assert.deepEqual([...(await servedBy(8))], ["two"]);
    assert.equal((await post("action", { kind: "undrain", service: "demo.v1.Echo", instanceId: "one" })).status, 200);
    assert.deepEqual([...(await servedBy(6))].sort(), ["one", "two"]);
    const unknown = await post("action", { kind: "eject", service: "demo.v1.Echo", instanceId: "three" });
    assert.equal(unknown.status, 404);
    assert.match(String(unknown.body.error), /instance_id: demo\.v1\.Echo has no instance "three" \(it has "one", "two"\)/);
  });

  it("pauses the service through the Admin service's Act: calls are refused UNAVAILABLE saying why", async () => {
    const admin = createAdminClient(router);
    try {
      await admin.act({ kind: ActionKind.PAUSE, service: "demo.v1.Echo", note: "migration" });
      const err = await client.say("hi").then(
        () => assert.fail("a paused service answered"),
        (e: grpc.ServiceError) => e,
      );
      assert.equal(err.code, grpc.status.UNAVAILABLE);
      assert.match(err.details, /demo\.v1\.Echo is paused by an operator \(migration\)/);
      await admin.act({ kind: ActionKind.RESUME, service: "demo.v1.Echo" });
      assert.equal((await client.say("back")).res.text, "back");
    } finally {
      admin.close();
    }
  });

  it("replays a recorded call with an edited request as a new call; --audit-log has every action", async () => {
    await client.say("original");
    const snap = (await (await fetch(new URL("snapshot.json", dashboard))).json()) as {
      calls: Array<{ started: { callId: string; method: string; metadata?: Record<string, string> }; messages?: Array<{ json?: string }> }>;
    };
    const rec = snap.calls.filter((c) => c.started.method === "/demo.v1.Echo/Say").at(-1)!;
    assert.equal(JSON.parse(rec.messages![0]!.json!).text, "original");
    const r = await post("replay", { callId: rec.started.callId, requestsJson: [JSON.stringify({ text: "edited" })] });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.code, 0);
    assert.equal(JSON.parse((r.body.responsesJson as string[])[0]!).text, "edited");
    assert.notEqual(r.body.callId, rec.started.callId);
    const after = (await (await fetch(new URL("snapshot.json", dashboard))).json()) as typeof snap;
    const replayed = after.calls.find((c) => c.started.callId === r.body.callId)!;
    assert.equal(replayed.started.metadata?.["grpcrouter-replay-of"], rec.started.callId);

    const audit = readFileSync(path.join(tmp, "audit.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { kind: string; action?: string; principal?: string; reason?: string });
    const actions = audit.filter((e) => e.kind === "operatorAction");
    assert.deepEqual(
      actions.map((e) => e.action),
      ["drain", "undrain", "pause", "resume", "replay"],
    );
    assert.equal(actions[0]!.principal, "dashboard (127.0.0.1)");
    assert.equal(actions[0]!.reason, "maintenance");
    assert.match(actions[2]!.principal!, /^127\.0\.0\.1:\d+$/);
  });
});
