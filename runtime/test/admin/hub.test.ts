import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Metadata } from "@grpc/grpc-js";
import { create, createRegistry, toBinary } from "@bufbuild/protobuf";
import { AdminHub, describeFromRegistry, REDACTED } from "../../src/admin/index.js";
import {
  EventSchema,
  file_grpcrouter_v1_admin,
  Instance_Health,
  Instance_Transport,
  WatchRequestSchema,
  type Event,
} from "../../src/gen/grpcrouter/v1/admin_pb.js";

// The admin protos themselves serve as "a user's service" here: real schemas, real bytes.
const describeAdmin = describeFromRegistry(createRegistry(file_grpcrouter_v1_admin));
const WATCH = "/grpcrouter.v1.Admin/Watch";

function drain(w: { take(): Event | undefined }): Event[] {
  const out: Event[] = [];
  for (let e = w.take(); e; e = w.take()) out.push(e);
  return out;
}

const cases = (events: Event[]) => events.map((e) => e.event.case);

function startCall(hub: AdminHub, id: number, extra: Partial<{ instanceId: string; metadata: Record<string, string> }> = {}) {
  hub.publish({ type: "callStarted", callId: id, method: "/demo.v1.Echo/Say", kind: "unary", peer: "ipv4:127.0.0.1:5000", ...extra });
}

describe("AdminHub", () => {
  it("gives a watcher the snapshot first, then live events, with no gap or overlap", () => {
    const hub = new AdminHub({ routerId: "r1" });
    hub.publish({ type: "instanceRegistered", instance: { id: "a", service: "demo.v1.Echo", labels: { zone: "eu" }, address: "10.0.0.1:1", streams: 1 } });
    startCall(hub, 1, { instanceId: "a" });
    const w = hub.watch();
    startCall(hub, 2, { instanceId: "a" });
    hub.publish({ type: "callEnded", callId: 1, code: 0 });
    const got = drain(w);
    assert.deepEqual(cases(got), ["snapshot", "callStarted", "callEnded"]);
    const snap = got[0]!.event.value as import("../../src/gen/grpcrouter/v1/admin_pb.js").Snapshot;
    assert.equal(snap.routerId, "r1");
    assert.equal(snap.instances.length, 1);
    assert.equal(snap.instances[0]!.inFlightCalls, 1, "call 1 was in flight at watch time");
    assert.equal(snap.instances[0]!.health, Instance_Health.SERVING);
    assert.deepEqual(
      snap.callsInFlight.map((c) => c.callId),
      [1n],
    );
    assert.deepEqual(
      snap.calls.map((c) => c.started?.callId),
      [1n],
    );
    assert.equal(hub.snapshot().instances[0]!.inFlightCalls, 1, "call 2 in flight, call 1 ended");
    w.close();
  });

  it("bounds each watcher's queue and tells a slow watcher how many events it lost, where it lost them", () => {
    const hub = new AdminHub({ watcherQueueLimit: 3 });
    const slow = hub.watch();
    const fast = hub.watch({ queueLimit: 100 });
    for (let i = 1; i <= 5; i++) startCall(hub, i);
    assert.equal(slow.dropped, 2);
    assert.equal(fast.dropped, 0);
    assert.equal(drain(fast).length, 6, "the fast watcher is not slowed or cut by the slow one");

    // Read one, publish one more: the marker sits between the survivors and the new event.
    // The snapshot is outside the bound; reading one event makes room for one.
    assert.equal(slow.take()!.event.case, "snapshot");
    assert.equal((slow.take()!.event.value as { callId: bigint }).callId, 1n);
    startCall(hub, 6);
    const rest = drain(slow);
    assert.deepEqual(cases(rest), ["callStarted", "callStarted", "dropped", "callStarted"]);
    assert.equal(rest[2]!.event.value, 2n);
    assert.equal((rest[3]!.event.value as { callId: bigint }).callId, 6n);

    // A gap at the end is reported once the queue is drained.
    for (let i = 7; i <= 12; i++) startCall(hub, i);
    const tail = drain(slow);
    assert.deepEqual(cases(tail), ["callStarted", "callStarted", "callStarted", "dropped"]);
    assert.equal(tail[3]!.event.value, 3n);
    assert.equal(slow.dropped, 5);
    slow.close();
    fast.close();
    assert.equal(hub.watcherCount, 0);
  });

  it("redacts authorization and cookie by default, and configured keys; -bin values become base64", () => {
    const hub = new AdminHub();
    const md = new Metadata();
    md.set("authorization", "Bearer secret-token");
    md.set("cookie", "session=abc");
    md.set("x-tenant", "acme");
    md.add("x-multi", "one");
    md.add("x-multi", "two");
    md.set("trace-bin", Buffer.from([1, 2, 3]));
    const w = hub.watch();
    hub.publish({ type: "callStarted", callId: 1, method: "/demo.v1.Echo/Say", metadata: md });
    hub.publish({ type: "callEnded", callId: 1, code: 0, trailers: { "set-cookie": "x=1", "x-done": "yes" } });
    const [, started, ended] = drain(w);
    const meta = (started!.event.value as { metadata: Record<string, string> }).metadata;
    assert.equal(meta["authorization"], REDACTED);
    assert.equal(meta["cookie"], REDACTED);
    assert.equal(meta["x-tenant"], "acme");
    assert.equal(meta["x-multi"], "one, two");
    assert.equal(meta["trace-bin"], "AQID");
    assert.ok(!JSON.stringify(hub.snapshot().calls.map((c) => c.started?.metadata)).includes("secret-token"));
    const trailers = (ended!.event.value as { trailers: Record<string, string> }).trailers;
    assert.deepEqual(trailers, { "set-cookie": REDACTED, "x-done": "yes" });

    const custom = new AdminHub({ redact: ["x-tenant"] });
    custom.publish({ type: "callStarted", callId: 1, method: "/demo.v1.Echo/Say", metadata: { authorization: "Bearer t", "X-Tenant": "acme" } });
    assert.deepEqual(custom.snapshot().callsInFlight[0]!.metadata, { authorization: "Bearer t", "x-tenant": REDACTED });
  });

  it("keeps a bounded ring of ended calls with a bounded number of messages each", () => {
    const hub = new AdminHub({ history: { calls: 3, messagesPerCall: 2 } });
    hub.publish({ type: "instanceRegistered", instance: { id: "a", service: "demo.v1.Echo" } });
    for (let i = 1; i <= 5; i++) {
      startCall(hub, i, { instanceId: "a" });
      for (let m = 0; m < 3; m++) hub.publish({ type: "callMessage", callId: i, direction: m % 2 ? "response" : "request", size: 10 + m });
      hub.publish({ type: "callEnded", callId: i, code: i === 5 ? 14 : 0, message: i === 5 ? "gone" : "" });
    }
    startCall(hub, 6, { instanceId: "a" });
    const snap = hub.snapshot({ includeMessages: true });
    assert.deepEqual(
      snap.calls.map((c) => c.started?.callId),
      [3n, 4n, 5n, 6n],
      "3 ended + the in-flight one, oldest first",
    );
    const five = snap.calls[2]!;
    assert.equal(five.ended?.code, 14);
    assert.equal(five.ended?.message, "gone");
    assert.equal(five.ended?.requests, 2);
    assert.equal(five.ended?.responses, 1);
    assert.deepEqual(
      five.messages.map((m) => m.size),
      [10, 11],
    );
    assert.equal(five.messagesOmitted, 1);
    assert.equal(snap.calls[3]!.ended, undefined);
    assert.equal(snap.instances[0]!.inFlightCalls, 1);
    // Without includeMessages the snapshot carries no messages, only the count.
    const lean = hub.snapshot();
    assert.equal(lean.calls[2]!.messages.length, 0);
    assert.equal(lean.calls[2]!.messagesOmitted, 3);
  });

  it("decodes bodies lazily, only for watchers that asked, cut at the configured size", () => {
    const hub = new AdminHub({ describe: describeAdmin, maxBodyJsonChars: 60, history: { calls: 0 } });
    assert.equal(hub.wantsMessages, false, "no history and no watcher: the router can skip message events");
    assert.equal(hub.wantsBodies, false);
    const plain = hub.watch({ includeMessages: true });
    assert.equal(hub.wantsMessages, true);
    assert.equal(hub.wantsBodies, false);
    const bodies = hub.watch({ includeBodies: true, queueLimit: 100 });
    assert.equal(hub.wantsBodies, true);
    const none = hub.watch();

    hub.publish({ type: "callStarted", callId: 7, method: WATCH, kind: "server_streaming" });
    const small = toBinary(WatchRequestSchema, create(WatchRequestSchema, { includeMessages: true, services: ["demo.v1.Echo"] }));
    hub.publish({ type: "callMessage", callId: 7, direction: "request", payload: small });
    const big = toBinary(EventSchema, create(EventSchema, { event: { case: "dropped", value: 123456789n }, time: { seconds: 1n, nanos: 0 } }));
    hub.publish({ type: "callMessage", callId: 7, direction: "response", payload: big });
    hub.publish({ type: "callMessage", callId: 7, direction: "response", payload: new Uint8Array([0xff, 0xff, 0xff]) });

    const p = drain(plain)
      .filter((e) => e.event.case === "callMessage")
      .map((e) => e.event.value as { json: string; size: number });
    assert.equal(p.length, 3);
    assert.deepEqual(
      p.map((m) => m.json),
      ["", "", ""],
      "no body for a watcher that did not ask",
    );
    assert.equal(p[0]!.size, small.byteLength);
    assert.deepEqual(cases(drain(none)), ["snapshot", "callStarted"], "no messages for a watcher that did not ask");

    const b = drain(bodies)
      .filter((e) => e.event.case === "callMessage")
      .map((e) => e.event.value as { json: string; jsonTruncated: boolean; jsonError: string });
    assert.deepEqual(JSON.parse(b[0]!.json), { includeMessages: true, services: ["demo.v1.Echo"] });
    assert.equal(b[0]!.jsonTruncated, false);
    assert.equal(b[1]!.json, '{"time":"1970-01-01T00:00:01Z","dropped":"123456789"}');
    assert.match(b[2]!.jsonError, /cannot decode grpcrouter\.v1\.Event/);

    const capped = new AdminHub({ describe: describeAdmin, maxBodyJsonChars: 20 });
    capped.publish({ type: "callStarted", callId: 1, method: WATCH });
    capped.publish({ type: "callMessage", callId: 1, direction: "request", payload: small });
    const msg = capped.snapshot({ includeBodies: true }).calls[0]!.messages[0]!;
    assert.equal(msg.jsonTruncated, true);
    assert.equal(msg.json.length, 20);
    assert.equal(capped.snapshot({ includeMessages: true }).calls[0]!.messages[0]!.json, "");
  });

  it("with nobody watching, reads no metadata and decodes no body until a snapshot asks", () => {
    let described = 0;
    let metadataReads = 0;
    const hub = new AdminHub({ describe: (m) => (described++, describeAdmin(m)) });
    const metadata: Record<string, string> = {};
    Object.defineProperty(metadata, "x-trace", { enumerable: true, get: () => (metadataReads++, "t1") });
    const req = toBinary(WatchRequestSchema, create(WatchRequestSchema, { services: ["a.B"] }));
    for (let id = 1; id <= 50; id++) {
      hub.publish({ type: "callStarted", callId: id, method: WATCH, kind: "unary", metadata });
      hub.publish({ type: "callMessage", callId: id, direction: "request", payload: req });
      hub.publish({ type: "callHeaders", callId: id, metadata });
      hub.publish({ type: "callEnded", callId: id, code: 0, trailers: metadata });
    }
    assert.equal(metadataReads, 0, "metadata is redacted into maps only when a record is built");
    assert.equal(described, 0, "no schema resolved, no body decoded");
    const last = hub.snapshot({ includeBodies: true }).calls.at(-1)!;
    assert.deepEqual(last.started!.metadata, { "x-trace": "t1" });
    assert.deepEqual(last.ended!.trailers, { "x-trace": "t1" });
    assert.deepEqual(JSON.parse(last.messages[0]!.json), { services: ["a.B"] });
    // (Read through a function: the asserts above narrowed the variables to 0 for TypeScript.)
    const counts = () => ({ metadataReads, described });
    assert.ok(counts().metadataReads > 0);
    assert.equal(counts().described, 1, "the schema resolved once");
  });

  it("keeps bodies in history so a later watcher still sees them, within a byte budget", () => {
    const hub = new AdminHub({ describe: describeAdmin, history: { bodyBytes: 40 } });
    assert.equal(hub.wantsBodies, true);
    hub.publish({ type: "callStarted", callId: 1, method: WATCH });
    const req = toBinary(WatchRequestSchema, create(WatchRequestSchema, { services: ["a.B"] }));
    for (let i = 0; i < 10; i++) hub.publish({ type: "callMessage", callId: 1, direction: "request", payload: req });
    const msgs = hub.snapshot({ includeBodies: true }).calls[0]!.messages;
    const kept = msgs.filter((m) => m.json !== "");
    assert.equal(kept.length, Math.floor(40 / req.byteLength));
    assert.deepEqual(JSON.parse(kept[0]!.json), { services: ["a.B"] });
    assert.equal(msgs.at(-1)!.jsonError, "body not captured");
  });

  it("keeps a body read as a view into a larger buffer as its own bytes, not the buffer", () => {
    const hub = new AdminHub({ describe: describeAdmin });
    const req = toBinary(WatchRequestSchema, create(WatchRequestSchema, { services: ["a.B"] }));
    const chunk = Buffer.alloc(64 * 1024);
    chunk.set(req, 1000);
    hub.publish({ type: "callStarted", callId: 1, method: WATCH, kind: "unary" });
    hub.publish({ type: "callMessage", callId: 1, direction: "request", payload: chunk.subarray(1000, 1000 + req.byteLength) });
    chunk.fill(0xff);
    const [kept] = hub.recordedCall(1n)!.requests!;
    assert.deepEqual([...kept!], [...req]);
    assert.ok(kept!.buffer.byteLength < chunk.byteLength, "the 64 KiB chunk is not held for a few bytes");
  });

  it("filters by service, and tracks instance health changes and deregistration", () => {
    const hub = new AdminHub();
    const echoOnly = hub.watch({ services: ["demo.v1.Echo"] });
    hub.publish({
      type: "instanceRegistered",
      instance: { id: "a", service: "demo.v1.Echo", maxConcurrentCalls: 10, transport: "wss", principal: "certificate CN=a" },
    });
    hub.publish({ type: "instanceRegistered", instance: { id: "b", service: "demo.v1.Other" } });
    hub.publish({ type: "instanceChanged", instance: { id: "a", service: "demo.v1.Echo", health: "draining" } });
    hub.publish({ type: "callStarted", callId: 1, method: "/demo.v1.Other/Go" });
    hub.publish({ type: "instanceDeregistered", instance: { id: "a", service: "demo.v1.Echo" } });
    const got = drain(echoOnly);
    assert.deepEqual(cases(got), ["snapshot", "instanceRegistered", "instanceChanged", "instanceDeregistered"]);
    const changed = got[2]!.event.value as { health: Instance_Health; maxConcurrentCalls: number; transport: Instance_Transport; principal: string };
    assert.equal(changed.health, Instance_Health.DRAINING);
    assert.equal(changed.maxConcurrentCalls, 10, "a change keeps the fields it did not name");
    assert.equal(changed.transport, Instance_Transport.WEBSOCKET_TLS);
    assert.equal(changed.principal, "certificate CN=a");
    assert.deepEqual(
      hub.snapshot().instances.map((i) => i.id),
      ["b"],
    );
    assert.deepEqual(hub.snapshot({ services: ["demo.v1.Echo"] }).instances, []);
  });

  it("builds a call's record from that call's own events when asked later, once, and a watcher sees the same record", () => {
    // Nobody watches while these calls run: their records are built by the snapshot.
    const hub = new AdminHub();
    for (const id of ["a", "b"]) hub.publish({ type: "instanceRegistered", instance: { id, service: "demo.v1.Echo" } });
    hub.publish({
      type: "callStarted",
      callId: 1,
      method: "/demo.v1.Echo/Say",
      instanceId: "a",
      reason: "first",
      metadata: { authorization: "secret", x: "1" },
    });
    hub.publish({ type: "callStarted", callId: 2, method: "/demo.v1.Echo/Say", instanceId: "b", metadata: { x: "2" } });
    hub.publish({ type: "callMessage", callId: 1, direction: "request", size: 3 });
    hub.publish({ type: "callHeaders", callId: 1, metadata: { h: "1" } });
    // Call 1 is retried on b: the record keeps where it started, its decisions say where it went.
    hub.publish({ type: "callDecision", callId: 1, decision: { kind: "attempt", attempt: 2, instanceId: "b", reason: "retry" } });
    assert.deepEqual(
      hub.snapshot().instances.map((i) => [i.id, i.inFlightCalls]),
      [
        ["a", 0],
        ["b", 2],
      ],
    );
    // An id is the same call whether published as a number or a bigint.
    hub.publish({ type: "callEnded", callId: 2n, code: 0 });
    hub.publish({ type: "callEnded", callId: 1, code: 14, message: "gone", trailers: { t: "1" } });
    hub.publish({ type: "callStarted", callId: 3, method: "/demo.v1.Echo/Say", instanceId: "a" });

    const snap = hub.snapshot();
    assert.deepEqual(
      snap.calls.map((c) => [c.started?.callId, c.started?.instanceId, c.ended?.code]),
      [
        [2n, "b", 0],
        [1n, "a", 14],
        [3n, "a", undefined],
      ],
    );
    const one = snap.calls[1]!;
    assert.deepEqual(one.started!.metadata, { authorization: REDACTED, x: "1" });
    assert.equal(one.started!.reason, "first");
    assert.deepEqual(one.headers?.metadata, { h: "1" });
    assert.deepEqual(
      one.decisions.map((d) => d.instanceId),
      ["b"],
    );
    assert.equal(one.ended!.message, "gone");
    assert.deepEqual(one.ended!.trailers, { t: "1" });
    assert.equal(one.ended!.requests, 1);
    assert.equal(snap.calls[0]!.headers, undefined, "call 2 had no response headers");
    assert.deepEqual(
      snap.instances.map((i) => [i.id, i.inFlightCalls]),
      [
        ["a", 1],
        ["b", 0],
      ],
    );
    // Built once: a second snapshot and a watcher's events carry the very same messages.
    assert.equal(hub.snapshot().calls[1]!.ended, one.ended);
    const w = hub.watch();
    hub.publish({ type: "callEnded", callId: 3, code: 5 });
    const got = drain(w);
    assert.deepEqual(cases(got), ["snapshot", "callEnded"]);
    const later = hub.snapshot().calls.find((c) => c.started?.callId === 3n)!;
    assert.equal(got[1]!.event.value, later.ended);
    assert.equal(later.ended!.code, 5);
    w.close();
  });

  it("ends a watcher's iteration when it is closed", async () => {
    const hub = new AdminHub();
    const w = hub.watch();
    const seen: string[] = [];
    const done = (async () => {
      for await (const e of w) seen.push(e.event.case ?? "");
    })();
    startCall(hub, 1);
    await new Promise((r) => setImmediate(r));
    hub.close();
    await done;
    assert.deepEqual(seen, ["snapshot", "callStarted"]);
  });
});

describe("AdminHub: a request seen before the call starts", () => {
  it("is delivered after callStarted and counted in the call", () => {
    const hub = new AdminHub();
    const w = hub.watch({ includeMessages: true });
    w.take();
    hub.publish({ type: "callMessage", callId: 9, direction: "request", size: 4 });
    assert.equal(w.take(), undefined, "nothing is sent for a call nobody knows yet");
    hub.publish({ type: "callStarted", callId: 9, method: "/a.A/M", instanceId: "i" });
    hub.publish({ type: "callMessage", callId: 9, direction: "response", size: 2 });
    hub.publish({ type: "callEnded", callId: 9, code: 0 });
    const seen: string[] = [];
    for (let ev = w.take(); ev; ev = w.take()) seen.push(ev.event.case === "callMessage" ? `msg:${ev.event.value.size}` : (ev.event.case ?? ""));
    assert.deepEqual(seen, ["callStarted", "msg:4", "msg:2", "callEnded"]);
    const rec = hub.snapshot().calls[0]!;
    assert.deepEqual([rec.ended?.requests, rec.ended?.responses], [1, 1]);
    hub.close();
  });
});

describe("default redaction of credential-like metadata", () => {
  it("redacts well-known and credential-looking keys by default; a configured list replaces the default", async () => {
    const { AdminHub, DEFAULT_REDACTED, REDACTED } = await import("../../src/admin/index.js");
    const hub = new AdminHub();
    const md = {
      "x-api-key": "k1",
      "x-goog-api-key": "k2",
      "x-session-id": "s",
      "my-secret": "z",
      "x-refresh-token": "t",
      "grpc-auth-bin": new Uint8Array([1]),
      "x-tenant": "acme",
      "user-agent": "ua",
    };
    hub.publish({ type: "callStarted", callId: 1, method: "/demo.v1.Echo/Say", metadata: md });
    const shown = hub.snapshot().callsInFlight[0]!.metadata;
    for (const k of ["x-api-key", "x-goog-api-key", "x-session-id", "my-secret", "x-refresh-token", "grpc-auth-bin"]) assert.equal(shown[k], REDACTED, k);
    assert.equal(shown["x-tenant"], "acme");
    assert.equal(shown["user-agent"], "ua");
    const more = new AdminHub({ redact: [...DEFAULT_REDACTED, /^x-tenant$/] });
    more.publish({ type: "callStarted", callId: 1, method: "/demo.v1.Echo/Say", metadata: md });
    assert.equal(more.snapshot().callsInFlight[0]!.metadata["x-tenant"], REDACTED);
    const none = new AdminHub({ redact: [] });
    none.publish({ type: "callStarted", callId: 1, method: "/demo.v1.Echo/Say", metadata: md });
    assert.equal(none.snapshot().callsInFlight[0]!.metadata["x-api-key"], "k1");
  });
});
