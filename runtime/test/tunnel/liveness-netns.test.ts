// A bridge behind a link that goes down and comes back on another address (a laptop's sleep,
// a network change, a NAT that forgot the flow): the bridge is in a network namespace this
// test makes, joined to the router by a veth pair; the router does not notice (its keepalive is long),
// the bridge does (its keepalive is short), reconnects when the link is back, and its new
// session replaces the stale one at once instead of being refused or waiting beside it.
// Needs root (ip netns), as the tests run.
import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomInt } from "node:crypto";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import type { AuditEvent } from "../../src/log/audit.js";
import { SimpleRequestSchema, SimpleResponseSchema, StreamingOutputCallRequestSchema, StreamingOutputCallResponseSchema } from "./gen/interop/v1/test_pb.js";
import { TestClient, collect, methodOf, startRouter, waitFor } from "./helpers.js";

function ip(...args: string[]): void {
  try {
    execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });
  } catch (e) {
    const stderr = String((e as { stderr?: Buffer }).stderr ?? "").trim();
    throw new Error(`ip ${args.join(" ")}: ${stderr || (e as Error).message} (this test makes a network namespace: it runs as root, with iproute2)`);
  }
}

/** A namespace with one veth link to this one: 10.x.y.1 here, 10.x.y.2 there. */
function makeNamespace() {
  const tag = `grl${process.pid % 100000}`;
  const ns = `${tag}-liveness`;
  const [here, there] = [`${tag}h`, `${tag}n`];
  const net = `10.${randomInt(200, 250)}.${randomInt(0, 255)}`;
  const cleanup = () => {
    for (const args of [
      ["link", "del", here],
      ["netns", "del", ns],
    ]) {
      try {
        ip(...args);
      } catch {
        // not there
      }
    }
  };
  cleanup();
  ip("netns", "add", ns);
  ip("link", "add", here, "type", "veth", "peer", "name", there);
  ip("link", "set", there, "netns", ns);
  ip("addr", "add", `${net}.1/24`, "dev", here);
  ip("link", "set", here, "up");
  ip("netns", "exec", ns, "ip", "addr", "add", `${net}.2/24`, "dev", there);
  ip("netns", "exec", ns, "ip", "link", "set", there, "up");
  ip("netns", "exec", ns, "ip", "link", "set", "lo", "up");
  return {
    ns,
    routerHost: `${net}.1`,
    bridgeHost: `${net}.2`,
    /** The bridge's side of the link, down or up. */
    link: (state: "up" | "down") => ip("netns", "exec", ns, "ip", "link", "set", there, state),
    /** A network change: the bridge's side gets 10.x.y.3 instead of .2. */
    renumber: () => {
      ip("netns", "exec", ns, "ip", "addr", "del", `${net}.2/24`, "dev", there);
      ip("netns", "exec", ns, "ip", "addr", "add", `${net}.3/24`, "dev", there);
    },
    movedHost: `${net}.3`,
    cleanup,
  };
}

test("a bridge whose link goes down and up re-registers within its keepalive, and its new session replaces the stale one", { timeout: 240_000 }, async (t) => {
  const net = makeNamespace();
  const audit: AuditEvent[] = [];
  // The router's keepalive is long: it still holds the old session when the bridge is back.
  const { router, port, logs } = await startRouter({ heartbeatIntervalMs: 60_000, audit: (e) => void audit.push(e) }, `${net.routerHost}:0`);
  const target = `${net.routerHost}:${port}`;
  const keepaliveMs = 1000;
  let child: ChildProcess | undefined;
  const bridgeLog: string[] = [];
  const client = new TestClient(target);
  // On a failure, say what the bridge and the router saw.
  const until = (what: string, cond: () => boolean) =>
    waitFor(what, cond, 60_000).catch((e: Error) => {
      throw new Error(`${e.message}\n--- bridge:\n${bridgeLog.join("\n")}\n--- router:\n${logs.join("\n")}`);
    });
  try {
    child = spawn(
      "ip",
      [
        "netns",
        "exec",
        net.ns,
        process.execPath,
        "--conditions=@grpcrouter/source",
        "--import",
        "tsx",
        fileURLToPath(new URL("./fixtures/roaming-instance.ts", import.meta.url)),
        target,
        "roamer",
        String(keepaliveMs),
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    child.stdout!.setEncoding("utf8").on("data", (d: string) => bridgeLog.push(...d.split("\n").filter(Boolean)));
    await until("the bridge in the namespace to register", () => router.instances().some((i) => i.id === "roamer"));
    assert.match(router.instances()[0]!.address, new RegExp(net.bridgeHost.replace(/\./g, "\\.")));
    const say = () => client.unary(methodOf("UnaryCall"), SimpleRequestSchema, SimpleResponseSchema, create(SimpleRequestSchema, { responseSize: 1 }));
    assert.equal((await say()).res.instanceId, "roamer");
    // A call open on the session that is about to go stale, idle (nothing the router sends
    // to the dead link waits for an answer: a retransmission could reach the bridge's kernel
    // once the link is back and reset the old connection, which would end the stale session
    // by another path than the one tested here).
    const stream = client.bidi(methodOf("FullDuplexCall"), StreamingOutputCallRequestSchema, StreamingOutputCallResponseSchema);
    const inFlight = collect(stream);
    stream.write(create(StreamingOutputCallRequestSchema, { responseParameters: [{ size: 4 }] }));
    await new Promise((resolve) => stream.once("data", resolve));

    net.link("down");
    await until("the bridge to notice the dead link (its keepalive)", () =>
      bridgeLog.some((l) => /lost \(no frame from the router for \d+ ms \(keepalive 1000 ms\)\)/.test(l)),
    );
    // The router has not noticed: the stale session is still registered.
    assert.equal(router.stats().streams.filter((s) => s.instanceId === "roamer").length, 1);
    // A network change while down (a laptop that slept and woke on another network): the old
    // connection's last packets (its FIN) can no longer leave, as behind a NAT that forgot
    // the flow, so the router can learn of the stale session only from the new one.
    net.renumber();
    const upAt = Date.now();
    net.link("up");

    await until(
      "the new session to replace the stale one",
      () =>
        audit.filter((e) => e.kind === "registered" && e.instanceId === "roamer").length === 2 &&
        router.stats().streams.filter((s) => s.instanceId === "roamer").length === 1,
    );
    t.diagnostic(`re-registered ${Date.now() - upAt} ms after the link came back (keepalive ${keepaliveMs} ms)`);
    const gone = audit.filter((e) => e.kind === "deregistered" && e.instanceId === "roamer");
    assert.equal(gone.length, 1);
    assert.match(gone[0]!.reason ?? "", /replaced by the instance's new Register stream/);
    assert.deepEqual(
      audit.filter((e) => e.kind === "refused" || e.kind === "turnedAway"),
      [],
      "never refused or turned away",
    );
    assert.match(logs.join("\n"), /replacing instance "roamer"/);
    // The call on the stale session failed over at once (UNAVAILABLE), it did not hang.
    const { status } = await inFlight;
    assert.equal(status.code, grpc.status.UNAVAILABLE);
    assert.match(status.details, /replaced/);
    assert.equal((await say()).res.instanceId, "roamer");
    assert.deepEqual(
      router.instances().map((i) => [i.id, i.streams]),
      [["roamer", 1]],
    );
    assert.match(router.instances()[0]!.address, new RegExp(`${net.movedHost.replace(/\./g, "\\.")}:`), "registered from its new address");
  } finally {
    client.close();
    child?.kill("SIGKILL");
    await router.close(0);
    net.cleanup();
  }
});
