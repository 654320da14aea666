// The router's call path without sockets: a client call and a Register stream are both
// ServerCalls (the narrow face router-call.ts and router-stream.ts talk to), here played by
// the test, so frames, statuses, cancels and retries are checked exactly.
import assert from "node:assert/strict";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { HeadersSchema, OpenSchema, TrailersSchema, WelcomeSchema } from "../../src/gen/grpcrouter/v1/tunnel_pb.js";
import { decodeControl } from "../../src/tunnel/frames.js";
import { AdminHub } from "../../src/admin/index.js";
import { GrpcServer, InstanceFrame, RouterFrame, createRouter, type Frame } from "../../src/tunnel/index.js";
import { TestTunnel, quietLog, waitFor } from "./helpers.js";
import { FakeCall, FakeInstance, UNARY, UNARY_FIELD } from "../protocol/fake-duplex.js";

function setup() {
  const hub = new AdminHub();
  const router = createRouter({ services: [{ tunnel: TestTunnel }], logger: quietLog(), hub });
  const server = new GrpcServer();
  router.addTo(server);
  return { router, server, hub };
}

test("a unary call: Open, request, HalfClose out; headers, response, trailers back; the hub sees one start and one end", async () => {
  const { router, server, hub } = setup();
  const events: string[] = [];
  hub.onEvent((e) => events.push(e.type));
  const inst = new FakeInstance(server, "a");
  await waitFor("Welcome", () => inst.frames().some((f) => f.field === RouterFrame.Welcome && decodeControl(WelcomeSchema, f.body).accepted));
  const md = new grpc.Metadata();
  md.set("x-trace-bin", Buffer.from([1, 2, 255]));
  const client = new FakeCall(UNARY, md);
  server.lookup(UNARY)!.handle(client, Buffer.from("req"));
  const sent: Frame[] = [];
  await waitFor("the call's frames", () => (sent.push(...inst.frames()), sent.some((f) => f.field === RouterFrame.HalfClose)));
  const [open, payload] = sent;
  assert.equal(open!.field, RouterFrame.Open);
  const o = decodeControl(OpenSchema, open!.body);
  assert.equal(o.method, UNARY);
  assert.deepEqual(
    o.metadata.map((m) => [m.key, [...m.value]]),
    [["x-trace-bin", [1, 2, 255]]],
  );
  assert.equal(payload!.field, UNARY_FIELD);
  assert.equal(Buffer.from(payload!.body).toString(), "req");
  inst.send((e) => {
    e.addControl(open!.call, InstanceFrame.Headers, HeadersSchema, create(HeadersSchema, { metadata: [{ key: "x-h", value: Buffer.from("v") }] }));
    e.add(open!.call, UNARY_FIELD, Buffer.from("res"));
    e.addControl(open!.call, InstanceFrame.Trailers, TrailersSchema, create(TrailersSchema, { code: 0, metadata: [{ key: "x-t", value: Buffer.from("w") }] }));
  });
  assert.deepEqual(client.headers?.get("x-h"), ["v"]);
  assert.deepEqual(client.written.map(String), ["res"]);
  assert.equal(client.status?.code, 0);
  assert.deepEqual(client.status?.trailers?.get("x-t"), ["w"]);
  // A listener makes the hub want message sizes: the request follows the start, the response its headers.
  assert.deepEqual(
    events.filter((e) => e.startsWith("call")),
    ["callStarted", "callMessage", "callHeaders", "callMessage", "callEnded"],
  );
  await router.close(0);
});

test("a client cancel sends Cancel to the instance and ends the call once; a second instance gets an undelivered call's retry", async () => {
  const { router, server, hub } = setup();
  const ended: number[] = [];
  hub.onEvent((e) => e.type === "callEnded" && ended.push(e.code ?? -1));
  const a = new FakeInstance(server, "a");
  await waitFor("Welcome", () => a.frames().some((f) => f.field === RouterFrame.Welcome));
  const client = new FakeCall(UNARY);
  server.lookup(UNARY)!.handle(client, Buffer.from("x"));
  const sent: Frame[] = [];
  await waitFor("Open", () => (sent.push(...a.frames()), sent.some((f) => f.field === RouterFrame.Open)));
  client.listener!.cancel();
  await waitFor("Cancel", () => a.frames().some((f) => f.field === RouterFrame.Cancel));
  assert.deepEqual(ended, [grpc.status.CANCELLED]);
  assert.equal(client.status, undefined, "a cancelled client gets no status written");

  // An instance that refuses a call unstarted (draining): the call moves to another instance.
  const b = new FakeInstance(server, "b");
  await waitFor("Welcome to b", () => b.frames().some((f) => f.field === RouterFrame.Welcome));
  const second = new FakeCall(UNARY);
  server.lookup(UNARY)!.handle(second, Buffer.from("y"));
  const openOn = async () => {
    for (;;) {
      for (const [inst, name] of [
        [a, "a"],
        [b, "b"],
      ] as const) {
        const o = inst.frames().find((f) => f.field === RouterFrame.Open);
        if (o) return { inst, name, call: o.call };
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const first = await openOn();
  first.inst.send((e) =>
    e.addControl(
      first.call,
      InstanceFrame.Trailers,
      TrailersSchema,
      create(TrailersSchema, { code: grpc.status.UNAVAILABLE, message: "draining", metadata: [{ key: "grpcrouter-refused", value: Buffer.from("1") }] }),
    ),
  );
  const retried = await openOn();
  assert.notEqual(retried.name, first.name);
  retried.inst.send((e) => {
    e.add(retried.call, UNARY_FIELD, Buffer.from("ok"));
    e.addControl(retried.call, InstanceFrame.Trailers, TrailersSchema, create(TrailersSchema, { code: 0 }));
  });
  assert.equal(second.status?.code, 0);
  assert.deepEqual(second.written.map(String), ["ok"]);
  assert.deepEqual(ended, [grpc.status.CANCELLED, grpc.status.OK]);
  await router.close(0);
});
