// Attack 5 of the security issue: registration storms and log floods. Register streams per
// connection and per address are capped, Hellos per second are rate-limited, and the log
// says each kind of event once, then how many more there were.
import assert from "node:assert/strict";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { TrailersSchema } from "../../src/gen/grpcrouter/v1/tunnel_pb.js";
import { tokenAuthorizer, tokenCredentials } from "../../src/auth/index.js";
import { FrameEncoder, InstanceFrame } from "../../src/tunnel/index.js";
import { rateLimitedLog } from "../../src/log/rate-limited-log.js";
import { SimpleRequestSchema, SimpleResponseSchema } from "../tunnel/gen/interop/v1/test_pb.js";
import { TestClient, methodOf, startBridge, startRouter, waitFor } from "../tunnel/helpers.js";
import { REGISTER, rawInstance } from "./attacker.js";

const say = (client: TestClient) =>
  client.unary(methodOf("UnaryCall"), SimpleRequestSchema, SimpleResponseSchema, create(SimpleRequestSchema, { responseSize: 2 }), new grpc.Metadata(), {
    deadline: Date.now() + 20_000,
  });

/** Opens `n` Register streams on `client` (one connection) without a Hello; resolves with their statuses' codes as they end. */
function openStreams(client: grpc.Client, n: number) {
  const ended: number[] = [];
  const calls = Array.from({ length: n }, () => {
    const c = client.makeBidiStreamRequest(
      REGISTER,
      (b: Buffer) => b,
      (b: Buffer) => b,
    );
    c.on("error", () => {});
    c.on("status", (s: grpc.StatusObject) => ended.push(s.code));
    return c;
  });
  return { calls, ended };
}

test("Register streams are capped per connection and per address; the rest end RESOURCE_EXHAUSTED at once", { timeout: 120_000 }, async () => {
  const { router, target, logs } = await startRouter({ registrationLimits: { perConnection: 50, perAddress: 80 }, helloTimeoutMs: 60_000 });
  // Two connections from one address (separate subchannel pools force separate connections).
  const clients = [0, 1].map(() => new grpc.Client(target, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 }));
  const good = await startBridge(target, "good");
  const caller = new TestClient(target);
  try {
    const a = openStreams(clients[0]!, 400);
    await waitFor("the first connection's extra streams to be refused", () => a.ended.length >= 350);
    assert.ok(a.ended.every((c) => c === grpc.status.RESOURCE_EXHAUSTED));
    const b = openStreams(clients[1]!, 400);
    // 80 per address: the bridge "good" (same address) holds one; 49 more fit on the second connection.
    await waitFor("the second connection's extra streams to be refused", () => b.ended.length >= 400 - 30);
    const open = router.stats().streams.length;
    console.log(
      `storm: 800 Register streams from one address; ${a.ended.length + b.ended.length} refused RESOURCE_EXHAUSTED, ${open} open (limits 50 per connection, 80 per address)`,
    );
    assert.ok(open <= 80, `${open} streams open`);
    // The storm is logged as a few lines, not 750.
    const refusedLines = logs.filter((l) => /refused a Register stream/.test(l));
    assert.ok(refusedLines.length <= 4, refusedLines.join("\n"));
    // A neighbour's calls go on.
    assert.equal((await say(caller)).res.instanceId, "good");
    for (const c of [...a.calls, ...b.calls]) c.cancel();
    // Closed streams free their places.
    await waitFor("the storm's streams to be gone", () => router.stats().streams.length === 1);
    const again = rawInstance(target, "after-the-storm", { client: clients[0]! });
    assert.equal((await again.welcome)?.accepted, true, "a new stream on that connection is welcomed again");
    again.close();
  } finally {
    caller.close();
    for (const c of clients) c.close();
    await good.stop(0);
    await router.close(0);
  }
});

test("2,000 Hellos with a wrong token: rate-limited, logged in a few lines, a neighbour's call succeeds", { timeout: 120_000 }, async () => {
  const { router, target, logs } = await startRouter({ authorize: tokenAuthorizer({ tokens: ["right"] }), registrationLimits: { hellosPerSecond: 200 } });
  const good = await startBridge(target, "good", { credentialsHook: tokenCredentials("right") });
  const caller = new TestClient(target);
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  try {
    const attackers = Array.from({ length: 2000 }, (_, i) => rawInstance(target, `bad-${i}`, { credentials: { token: "wrong" }, client }));
    const neighbour = say(caller);
    const statuses = await Promise.all(attackers.map((a) => a.status.then((s) => s.code)));
    const byCode = new Map<number, number>();
    for (const c of statuses) byCode.set(c, (byCode.get(c) ?? 0) + 1);
    console.log(`hello storm: 2000 bad Hellos → ${[...byCode].map(([c, n]) => `${grpc.status[c]} ${n}`).join(", ")}; ${logs.length} log lines`);
    assert.ok(
      statuses.every((c) => c === grpc.status.FAILED_PRECONDITION || c === grpc.status.RESOURCE_EXHAUSTED),
      "refused or rate-limited, never admitted",
    );
    assert.ok((byCode.get(grpc.status.RESOURCE_EXHAUSTED) ?? 0) > 0, "the Hello rate limit turned some away");
    assert.ok(logs.length < 20, `${logs.length} log lines:\n${logs.slice(0, 30).join("\n")}`);
    assert.equal((await neighbour).res.instanceId, "good");
    assert.deepEqual(
      router.instances().map((i) => i.id),
      ["good"],
    );
  } finally {
    client.close();
    caller.close();
    await good.stop(0);
    await router.close(0);
  }
});

test("one trailer frame with 20,000 bad keys is one log line, not 20,000", { timeout: 60_000 }, async () => {
  const { router, target, logs } = await startRouter();
  const caller = new TestClient(target);
  try {
    const inst = rawInstance(target, "noisy");
    assert.equal((await inst.welcome)?.accepted, true);
    const call = say(caller).catch((e: grpc.ServiceError) => e);
    await waitFor("the call to reach the instance", () => inst.opens.length > 0);
    const enc = new FrameEncoder();
    const metadata = Array.from({ length: 20_000 }, (_, i) => ({ key: `bad key ${i}`, value: new Uint8Array([0x61]) }));
    enc.addControl(inst.opens[0]!, InstanceFrame.Trailers, TrailersSchema, create(TrailersSchema, { code: 13, message: "boom", metadata }));
    inst.call.write(enc.take());
    const r = await call;
    assert.equal((r as grpc.ServiceError).code, grpc.status.INTERNAL);
    const dropped = logs.filter((l) => /dropped trailer/.test(l));
    console.log(`trailer flood: 20000 bad keys → ${dropped.length} log line(s)`);
    assert.ok(dropped.length <= 2, dropped.slice(0, 5).join("\n"));
    inst.close();
  } finally {
    caller.close();
    await router.close(0);
  }
});

test("the rate-limited log: one line per reason, then a count when the window ends", async () => {
  const lines: string[] = [];
  const log = rateLimitedLog((l) => lines.push(l), { windowMs: 60_000 });
  for (let i = 0; i < 500; i++)
    log(`refused Register stream from ipv4:10.0.0.${i % 250}:${40000 + i}: not authorized: the token is not valid for demo.v1.Echo`);
  log(`registered instance "a" of demo.v1.Echo (127.0.0.1:5000)`);
  log(`registered instance "b" of demo.v1.Echo (127.0.0.1:5001)`);
  log.flush();
  assert.deepEqual(lines, [
    "refused Register stream from ipv4:10.0.0.0:40000: not authorized: the token is not valid for demo.v1.Echo",
    'registered instance "a" of demo.v1.Echo (127.0.0.1:5000)',
    'registered instance "b" of demo.v1.Echo (127.0.0.1:5001)',
    "499 more like this in the last 60 s: refused Register stream from ipv4:10.0.0.0:40000: not authorized: the token is not valid for demo.v1.Echo",
  ]);
});
