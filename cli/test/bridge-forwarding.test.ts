// The sidecar's forwarding (`grpcrouter bridge --target`), in process: a router, a raw bridge
// running passthroughHandler over one node:http2 connection, and a grpc-js target that
// answers with raw bytes. What a client sends and what the target answers must arrive
// unchanged: message bytes, headers and trailers (text and -bin), status code and message,
// grpc-status-details-bin; a client deadline reaches the target, and a cancelled call is
// cancelled on the target.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { Http2Channel, createRawBridge, createRouter, defineTunnel, type Bridge, type Router } from "@grpcrouter/runtime";
import { passthroughHandler } from "../src/commands/bridge.js";
import { echoProtoDir, echoSchemas } from "./serve-helpers.js";

const identity = (b: Buffer) => b;
const path = (m: string) => `/demo.v1.Echo/${m}`;
const DETAILS = Buffer.from([0x08, 0x09, 0x12, 0x03, 0x61, 0x62, 0x63, 0xff, 0x00]);

interface TargetProbe {
  deadlines: number[];
  cancelled: string[];
}

/** A grpc-js server answering Echo's paths with raw bytes. */
async function startTarget(probe: TargetProbe): Promise<{ address: string; server: grpc.Server }> {
  const def = (m: string, requestStream: boolean, responseStream: boolean) => ({
    path: path(m),
    requestStream,
    responseStream,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  });
  const server = new grpc.Server();
  const headerOf = (call: { metadata: grpc.Metadata }) => {
    const md = new grpc.Metadata();
    md.set("x-echo", `${call.metadata.get("x-in")[0] ?? ""}`);
    const bin = call.metadata.get("x-in-bin")[0];
    if (bin instanceof Buffer) md.set("x-echo-bin", bin);
    return md;
  };
  const trailer = () => {
    const md = new grpc.Metadata();
    md.set("x-trailer", "t1");
    md.add("x-trailer", "t2");
    md.set("x-trailer-bin", Buffer.from([0, 1, 2, 254, 255]));
    return md;
  };
  server.addService(
    {
      Say: def("Say", false, false),
      Count: def("Count", false, true),
      Collect: def("Collect", true, false),
      Chat: def("Chat", true, true),
    } as grpc.ServiceDefinition,
    {
      Say: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        probe.deadlines.push(Number(call.getDeadline()));
        call.sendMetadata(headerOf(call));
        if (call.metadata.get("x-sleep").length > 0) {
          call.on("cancelled", () => probe.cancelled.push("Say"));
          return;
        }
        if (call.metadata.get("x-fail").length > 0) {
          const md = trailer();
          md.set("grpc-status-details-bin", DETAILS);
          return cb({ code: grpc.status.FAILED_PRECONDITION, details: "asked to fail: 100% ü", metadata: md });
        }
        cb(null, Buffer.concat([Buffer.from("re:"), call.request]), trailer());
      },
      Count: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
        let i = 0;
        call.on("cancelled", () => probe.cancelled.push("Count"));
        const n = call.request.length;
        const tick = () => {
          if (call.cancelled) return;
          if (n > 0 && i >= n) return call.end(trailer());
          call.write(Buffer.from([i++ & 0xff]));
          setTimeout(tick, n > 0 ? 0 : 20);
        };
        tick();
      },
      Collect: (call: grpc.ServerReadableStream<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        const parts: Buffer[] = [];
        call.on("data", (b: Buffer) => parts.push(b));
        call.on("end", () => cb(null, Buffer.concat(parts)));
      },
      Chat: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
        call.on("data", (b: Buffer) => call.write(b));
        call.on("end", () => call.end(trailer()));
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  return { address: `127.0.0.1:${port}`, server };
}

function waitFor(what: string, cond: () => boolean, ms = 30_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const until = Date.now() + ms;
    const poll = () => (cond() ? resolve() : Date.now() > until ? reject(new Error(`timed out waiting for ${what}`)) : setTimeout(poll, 10));
    poll();
  });
}

describe("grpcrouter bridge's forwarding to a grpc-js target over node:http2", { timeout: 120_000 }, () => {
  const probe: TargetProbe = { deadlines: [], cancelled: [] };
  let target: { address: string; server: grpc.Server };
  let router: Router;
  let bridge: Bridge;
  let channel: Http2Channel;
  let client: grpc.Client;

  before(async () => {
    const schemas = await echoSchemas(echoProtoDir);
    const tunnel = defineTunnel(schemas.service, "demo.v1.EchoRouter", { Say: 16, Count: 17, Collect: 18, Chat: 19 });
    target = await startTarget(probe);
    router = createRouter({ services: [{ tunnel }], logger: () => {} });
    const { port } = await router.listen("127.0.0.1:0");
    channel = new Http2Channel(target.address, { proxy: false });
    bridge = createRawBridge(tunnel, passthroughHandler(channel), { router: `127.0.0.1:${port}`, instanceId: "sidecar", logger: () => {}, proxy: false });
    await bridge.start();
    client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  });
  after(async () => {
    client?.close();
    await bridge?.stop(0);
    channel?.close();
    await router?.close(0);
    target?.server.forceShutdown();
  });

  function unary(md: grpc.Metadata, body: Buffer, options: grpc.CallOptions = {}) {
    return new Promise<{ err: grpc.ServiceError | null; res?: Buffer; headers?: grpc.Metadata; status?: grpc.StatusObject }>((resolve) => {
      let headers: grpc.Metadata | undefined;
      let res: Buffer | undefined;
      let err: grpc.ServiceError | null = null;
      const call = client.makeUnaryRequest(path("Say"), identity, identity, body, md, options, (e, r) => {
        err = e;
        res = r;
      });
      call.on("metadata", (m) => (headers = m));
      call.on("status", (status) => setImmediate(() => resolve({ err, res, headers, status })));
    });
  }

  it("unary: message bytes, headers and trailers (text and -bin) pass unchanged, and the deadline reaches the target", async () => {
    const md = new grpc.Metadata();
    md.set("x-in", "hello");
    md.set("x-in-bin", Buffer.from([0xde, 0xad, 0x00, 0xbe, 0xef]));
    const before = probe.deadlines.length;
    const r = await unary(md, Buffer.from([0, 1, 2, 0xff]), { deadline: new Date(Date.now() + 30_000) });
    assert.equal(r.err, null);
    assert.deepEqual(r.res, Buffer.concat([Buffer.from("re:"), Buffer.from([0, 1, 2, 0xff])]));
    assert.equal(r.headers?.get("x-echo")[0], "hello");
    assert.deepEqual(r.headers?.get("x-echo-bin")[0], Buffer.from([0xde, 0xad, 0x00, 0xbe, 0xef]));
    // Repeated text values may arrive joined by ", " (HTTP/2 does that); the order stays.
    assert.equal(r.status?.metadata.get("x-trailer").join(", "), "t1, t2");
    assert.deepEqual(r.status?.metadata.get("x-trailer-bin")[0], Buffer.from([0, 1, 2, 254, 255]));
    const deadline = probe.deadlines[before]!;
    assert.ok(Number.isFinite(deadline) && deadline > Date.now() && deadline <= Date.now() + 30_000, `the target saw deadline ${deadline}`);
  });

  it("an error status passes with its message, trailers and grpc-status-details-bin", async () => {
    const md = new grpc.Metadata();
    md.set("x-fail", "1");
    const r = await unary(md, Buffer.alloc(0));
    assert.equal(r.err?.code, grpc.status.FAILED_PRECONDITION);
    assert.equal(r.err?.details, "asked to fail: 100% ü");
    assert.deepEqual(r.status?.metadata.get("grpc-status-details-bin")[0], DETAILS);
    assert.deepEqual(r.status?.metadata.get("x-trailer-bin")[0], Buffer.from([0, 1, 2, 254, 255]));
  });

  it("a deadline that passes: DEADLINE_EXCEEDED for the client, the target's call is cancelled", async () => {
    const md = new grpc.Metadata();
    md.set("x-sleep", "1");
    const before = probe.cancelled.filter((c) => c === "Say").length;
    const r = await unary(md, Buffer.alloc(0), { deadline: new Date(Date.now() + 500) });
    assert.equal(r.err?.code, grpc.status.DEADLINE_EXCEEDED);
    await waitFor("the target to see its call end", () => probe.cancelled.filter((c) => c === "Say").length > before);
  });

  it("server streaming, then a client cancel: the target's stream is cancelled", async () => {
    const done = new Promise<Buffer[]>((resolve, reject) => {
      const got: Buffer[] = [];
      const s = client.makeServerStreamRequest(path("Count"), identity, identity, Buffer.alloc(50));
      s.on("data", (b: Buffer) => got.push(b));
      s.on("status", (st) => (st.code === 0 ? resolve(got) : reject(new Error(st.details))));
      s.on("error", () => {});
    });
    const got = await done;
    assert.deepEqual(
      got.map((b) => b[0]),
      Array.from({ length: 50 }, (_, i) => i),
    );

    const before = probe.cancelled.filter((c) => c === "Count").length;
    const endless = client.makeServerStreamRequest(path("Count"), identity, identity, Buffer.alloc(0));
    let received = 0;
    endless.on("data", () => received++);
    const status = new Promise<grpc.StatusObject>((resolve) => endless.on("status", resolve));
    endless.on("error", () => {});
    await waitFor("a few messages", () => received >= 3);
    endless.cancel();
    assert.equal((await status).code, grpc.status.CANCELLED);
    await waitFor("the target to see the cancel", () => probe.cancelled.filter((c) => c === "Count").length > before);
  });

  it("client streaming and bidi streaming: every message, in order", async () => {
    const collected = await new Promise<Buffer>((resolve, reject) => {
      const s = client.makeClientStreamRequest(path("Collect"), identity, identity, (e, r) => (e ? reject(e) : resolve(r!)));
      for (let i = 0; i < 20; i++) s.write(Buffer.from([i]));
      s.write(Buffer.alloc(200_000, 7));
      s.end();
    });
    assert.equal(collected.length, 20 + 200_000);
    assert.deepEqual(
      [...collected.subarray(0, 20)],
      Array.from({ length: 20 }, (_, i) => i),
    );

    const chat = client.makeBidiStreamRequest(path("Chat"), identity, identity);
    const echoed: Buffer[] = [];
    chat.on("data", (b: Buffer) => echoed.push(b));
    const status = new Promise<grpc.StatusObject>((resolve) => chat.on("status", resolve));
    for (let i = 0; i < 10; i++) chat.write(Buffer.from(`m${i}`));
    chat.end();
    const st = await status;
    assert.equal(st.code, grpc.status.OK);
    assert.deepEqual(st.metadata.get("x-trailer-bin")[0], Buffer.from([0, 1, 2, 254, 255]));
    assert.deepEqual(
      echoed.map(String),
      Array.from({ length: 10 }, (_, i) => `m${i}`),
    );
  });

  it("a client that reads slowly: the target is held back, every message arrives whole and in order", async () => {
    // 32 × 64 KiB echoed back: far more than the tunnel's window, so the sidecar must wait
    // for it (pausing the target's stream) while the client is not reading.
    const chat = client.makeBidiStreamRequest(path("Chat"), identity, identity);
    const echoed: Buffer[] = [];
    chat.on("data", (b: Buffer) => echoed.push(b));
    chat.pause();
    const status = new Promise<grpc.StatusObject>((resolve) => chat.on("status", resolve));
    const sent = Array.from({ length: 32 }, (_, i) => Buffer.alloc(64 * 1024, i));
    for (const m of sent) chat.write(m);
    chat.end();
    await new Promise((r) => setTimeout(r, 300));
    chat.resume();
    assert.equal((await status).code, grpc.status.OK);
    assert.equal(echoed.length, sent.length);
    echoed.forEach((m, i) => assert.ok(m.equals(sent[i]!), `message ${i}`));
  });

  it("a response larger than the tunnel takes: RESOURCE_EXHAUSTED for the client, and the next call goes through", async () => {
    // Collect answers every byte it got in one message: 5 MiB, over the bridge's 4 MiB limit.
    const err = await new Promise<grpc.ServiceError | null>((resolve) => {
      const s = client.makeClientStreamRequest(path("Collect"), identity, identity, (e) => resolve(e));
      for (let i = 0; i < 5; i++) s.write(Buffer.alloc(1024 * 1024, i));
      s.end();
    });
    assert.equal(err?.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.match(err?.details ?? "", /larger than the limit/);
    const r = await unary(new grpc.Metadata(), Buffer.from("after"));
    assert.equal(r.err, null);
    assert.deepEqual(r.res, Buffer.from("re:after"));
  });

  it("a target that is down: UNAVAILABLE naming it", async () => {
    const dead = new Http2Channel("127.0.0.1:1", { proxy: false });
    const handler = passthroughHandler(dead);
    const controller = new AbortController();
    const status = await handler({
      method: path("Say"),
      kind: "unary",
      metadata: new grpc.Metadata(),
      deadline: Infinity,
      peer: "test",
      signal: controller.signal,
      requests: (async function* () {})(),
      sendHeaders: () => {},
      send: async () => {},
    });
    assert.equal(status.code, grpc.status.UNAVAILABLE);
    assert.match(status.details ?? "", /target 127\.0\.0\.1:1: Failed to connect to 127\.0\.0\.1:1: .*ECONNREFUSED/);
    dead.close();
  });
});
