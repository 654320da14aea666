// The Register stream over WebSocket (issue 16): a real nginx that speaks HTTP/1.1 only sits
// between the bridge and the router, so HTTP/2 cannot get through and the bridge ("auto")
// falls back to WebSocket; a grpc-js client calls the router with every kind of call. Also:
// a TLS router with mTLS over WebSocket, the move back to HTTP/2 once it gets through (with
// a call in flight that completes), and WebSocket through a CONNECT proxy is in proxy.test.ts.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import http from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { GrpcServer, createBridge, createRouter, type PeerCertificateInfo, type ServerCall } from "../../src/tunnel/index.js";
import { WebSocketChannel } from "../../src/tunnel/bridge/websocket-channel.js";
import { loadChannelCredentials, loadServerCredentials } from "../../src/auth/index.js";
import { AdminHub } from "../../src/admin/index.js";
import { Instance_Transport } from "../../src/gen/grpcrouter/v1/admin_pb.js";
import {
  SimpleRequestSchema,
  SimpleResponseSchema,
  StreamingInputCallRequestSchema,
  StreamingInputCallResponseSchema,
  StreamingOutputCallRequestSchema,
  StreamingOutputCallResponseSchema,
} from "./gen/interop/v1/test_pb.js";
import { TestClient, TestTunnel, collect, interopImpl, methodOf, quietLog, startBridge, startRouter, waitFor } from "./helpers.js";
import { startHttp1Proxy, type Nginx } from "./nginx.js";

const here = path.dirname(fileURLToPath(import.meta.url));

/** Calls of all four kinds through the router; each must be answered by `instanceId`. */
async function everyKind(client: TestClient, instanceId: string): Promise<void> {
  const { res } = await client.unary(methodOf("UnaryCall"), SimpleRequestSchema, SimpleResponseSchema, create(SimpleRequestSchema, { responseSize: 10 }));
  assert.equal(res.instanceId, instanceId);
  assert.equal(res.payload?.body.length, 10);

  const req = create(StreamingOutputCallRequestSchema, { responseParameters: [{ size: 1 }, { size: 2 }, { size: 70_000 }] });
  const streamed = await collect(
    client.serverStream(methodOf("StreamingOutputCall"), StreamingOutputCallRequestSchema, StreamingOutputCallResponseSchema, req),
  );
  assert.equal(streamed.status.code, grpc.status.OK, streamed.status.details);
  assert.deepEqual(
    streamed.messages.map((m) => m.payload?.body.length),
    [1, 2, 70_000],
  );

  const sum = await new Promise<number>((resolve, reject) => {
    const call = client.clientStream(
      methodOf("StreamingInputCall"),
      StreamingInputCallRequestSchema,
      StreamingInputCallResponseSchema,
      new grpc.Metadata(),
      {},
      (err, r) => (err ? reject(err) : resolve(r!.aggregatedPayloadSize)),
    );
    for (const size of [3, 5, 100_000]) call.write(create(StreamingInputCallRequestSchema, { payload: { body: new Uint8Array(size) } }));
    call.end();
  });
  assert.equal(sum, 100_008);

  const bidi = client.bidi(methodOf("FullDuplexCall"), StreamingOutputCallRequestSchema, StreamingOutputCallResponseSchema);
  const got = collect(bidi);
  for (const size of [4, 8, 16]) bidi.write(create(StreamingOutputCallRequestSchema, { responseParameters: [{ size }] }));
  bidi.end();
  const out = await got;
  assert.equal(out.status.code, grpc.status.OK, out.status.details);
  assert.deepEqual(
    out.messages.map((m) => m.payload?.body.length),
    [4, 8, 16],
  );
}

/**
 * A TCP switch the bridge dials: each new connection goes to the port `to` names now;
 * connections already made stay where they are. Records each connection's first bytes.
 */
async function tcpSwitch(to: number): Promise<{ port: number; to: number; firstBytes: Array<{ to: number; head: string }>; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const state = {
    port: 0,
    to,
    firstBytes: [] as Array<{ to: number; head: string }>,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  const server: Server = createServer((inbound) => {
    const dest = state.to;
    const outbound = connect(dest, "127.0.0.1");
    sockets.add(inbound).add(outbound);
    inbound.once("data", (d: Buffer) => state.firstBytes.push({ to: dest, head: d.subarray(0, 14).toString("latin1") }));
    inbound.pipe(outbound).pipe(inbound);
    const end = () => {
      inbound.destroy();
      outbound.destroy();
      sockets.delete(inbound);
      sockets.delete(outbound);
    };
    inbound.on("error", end).on("close", end);
    outbound.on("error", end).on("close", end);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  state.port = (server.address() as { port: number }).port;
  return state;
}

describe("the Register stream over WebSocket", { timeout: 180_000 }, () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-ws-"));
    execFileSync("bash", [path.join(here, "..", "auth", "make-certs.sh"), dir]);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("behind an HTTP/1.1-only nginx, auto falls back to WebSocket and every kind of call passes", async () => {
    const { router, target, logs } = await startRouter();
    let nginx: Nginx | undefined;
    const bridgeLogs: string[] = [];
    const client = new TestClient(target);
    let bridge;
    try {
      nginx = await startHttp1Proxy(dir, Number(target.split(":")[1]));
      bridge = await startBridge(`127.0.0.1:${nginx.port}`, "behind-nginx", { logger: quietLog(bridgeLogs) });
      assert.ok(
        bridgeLogs.some((l) => /HTTP\/2 to router 127\.0\.0\.1:\d+ could not be established .*; falling back to WebSocket/.test(l)),
        bridgeLogs.join("\n"),
      );
      // nginx refused the HTTP/2 preface.
      assert.match(nginx.accessLog(), /"PRI \* HTTP\/2\.0" 400/);
      assert.deepEqual(
        router.instances().map((i) => i.id),
        ["behind-nginx"],
      );
      await everyKind(client, "behind-nginx");
      // The router saw one stream from nginx's address, registered like any other.
      assert.ok(
        logs.some((l) => /registered instance "behind-nginx"/.test(l)),
        logs.join("\n"),
      );
      await bridge.stop(1000);
      // The Register stream went through nginx as an Upgrade (101; nginx logs it once it closed).
      await waitFor("nginx's log of the Upgrade", () => /"GET \/interop\.v1\.TestServiceRouter\/Register HTTP\/1\.1" 101/.test(nginx!.accessLog()));
    } finally {
      client.close();
      await bridge?.stop(100);
      await router.close(100);
      await nginx?.stop();
    }
  });

  it("a TLS router with mTLS: the bridge's certificate reaches authorize over WebSocket", async () => {
    const seen: Array<PeerCertificateInfo | undefined> = [];
    const router = createRouter({
      services: [{ tunnel: TestTunnel }],
      logger: quietLog(),
      authorize: (hello) => {
        seen.push(hello.certificate);
        return hello.certificate?.commonName === "instance-a" ? undefined : "no certificate";
      },
    });
    const f = (n: string) => path.join(dir, n);
    const { port } = await router.listen("127.0.0.1:0", loadServerCredentials({ cert: f("server.pem"), key: f("server.key"), clientCa: f("ca.pem") }));
    const target = `localhost:${port}`;
    const bridge = await startBridge(target, "tls-ws", {
      transport: "websocket",
      credentials: loadChannelCredentials({ ca: f("ca.pem"), cert: f("client.pem"), key: f("client.key") }),
    });
    const client = new TestClient(target, loadChannelCredentials({ ca: f("ca.pem"), cert: f("client.pem"), key: f("client.key") }));
    try {
      assert.equal(seen.length, 1);
      assert.equal(seen[0]?.commonName, "instance-a");
      assert.deepEqual(
        router.instances().map((i) => i.id),
        ["tls-ws"],
      );
      // A client over TLS (HTTP/2) reaches the instance registered over WebSocket.
      const { res } = await client.unary(methodOf("UnaryCall"), SimpleRequestSchema, SimpleResponseSchema, create(SimpleRequestSchema, { responseSize: 5 }));
      assert.equal(res.instanceId, "tls-ws");
    } finally {
      client.close();
      await bridge.stop(100);
      await router.close(100);
    }
  });

  it("behind a TLS-terminating HTTP/1.1-only nginx (ALPN refuses h2), auto falls back to WebSocket over TLS", async () => {
    const f = (n: string) => path.join(dir, n);
    const router = createRouter({ services: [{ tunnel: TestTunnel }], logger: quietLog() });
    const { port } = await router.listen("127.0.0.1:0", loadServerCredentials({ cert: f("server.pem"), key: f("server.key") }));
    const nginx = await startHttp1Proxy(dir, port, "nginx-tls", { cert: f("server.pem"), key: f("server.key") });
    const bridgeLogs: string[] = [];
    let bridge;
    try {
      bridge = await startBridge(`localhost:${nginx.port}`, "behind-tls-nginx", {
        logger: quietLog(bridgeLogs),
        credentials: loadChannelCredentials({ ca: f("ca.pem") }),
      });
      assert.ok(
        bridgeLogs.some((l) => /could not be established .*; falling back to WebSocket/.test(l)),
        bridgeLogs.join("\n"),
      );
      assert.deepEqual(
        router.instances().map((i) => i.id),
        ["behind-tls-nginx"],
      );
      const client = new TestClient(`localhost:${port}`, loadChannelCredentials({ ca: f("ca.pem") }));
      try {
        const { res } = await client.unary(methodOf("UnaryCall"), SimpleRequestSchema, SimpleResponseSchema, create(SimpleRequestSchema, { responseSize: 3 }));
        assert.equal(res.instanceId, "behind-tls-nginx");
      } finally {
        client.close();
      }
    } finally {
      await bridge?.stop(100);
      await router.close(100);
      await nginx.stop();
    }
  });

  it("a proxy that swallows the HTTP/2 preface in silence: auto gives HTTP/2 up after 10 s and falls back", async () => {
    const { router, target } = await startRouter();
    const routerPort = Number(target.split(":")[1]);
    const held = new Set<Socket>();
    // Passes HTTP/1.1 on to the router; a connection that opens with the h2 preface hears nothing.
    const silent = createServer((inbound) => {
      held.add(inbound);
      inbound.on("error", () => {});
      inbound.once("data", (first: Buffer) => {
        if (first.subarray(0, 3).toString() === "PRI") return;
        const outbound = connect(routerPort, "127.0.0.1");
        held.add(outbound);
        outbound.on("error", () => inbound.destroy());
        outbound.write(first);
        inbound.pipe(outbound).pipe(inbound);
      });
    });
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", () => resolve()));
    const bridgeLogs: string[] = [];
    let bridge;
    try {
      bridge = await startBridge(`127.0.0.1:${(silent.address() as { port: number }).port}`, "past-silence", { logger: quietLog(bridgeLogs) });
      assert.ok(
        bridgeLogs.some((l) => /could not be established .*no HTTP\/2 answer within 10000 ms.*falling back to WebSocket/.test(l)),
        bridgeLogs.join("\n"),
      );
      assert.deepEqual(
        router.instances().map((i) => i.id),
        ["past-silence"],
      );
    } finally {
      await bridge?.stop(100);
      await router.close(100);
      for (const s of held) s.destroy();
      silent.close();
    }
  });

  it("auto moves back to HTTP/2 once it gets through, and a call in flight on the WebSocket stream completes", async () => {
    const hub = new AdminHub();
    const { router, target } = await startRouter({ hub });
    const routerPort = Number(target.split(":")[1]);
    const nginx = await startHttp1Proxy(dir, routerPort);
    // The bridge dials the switch; at first it leads to nginx (HTTP/1.1 only).
    const sw = await tcpSwitch(nginx.port);
    const bridgeLogs: string[] = [];
    const client = new TestClient(target);
    let bridge;
    try {
      bridge = await startBridge(`127.0.0.1:${sw.port}`, "mover", { logger: quietLog(bridgeLogs), h2Probe: { initialMs: 200, maxMs: 1000 } });
      assert.ok(
        bridgeLogs.some((l) => /falling back to WebSocket/.test(l)),
        bridgeLogs.join("\n"),
      );
      // The Admin API (and so the dashboard) says how the instance is connected.
      assert.equal(hub.snapshot().instances[0]?.transport, Instance_Transport.WEBSOCKET);
      // A bidi call on the WebSocket stream: one message each way, then it stays open.
      const bidi = client.bidi(methodOf("FullDuplexCall"), StreamingOutputCallRequestSchema, StreamingOutputCallResponseSchema);
      const got = collect(bidi);
      const messages: number[] = [];
      bidi.on("data", (m: { payload?: { body: Uint8Array } }) => messages.push(m.payload?.body.length ?? -1));
      bidi.write(create(StreamingOutputCallRequestSchema, { responseParameters: [{ size: 11 }] }));
      await waitFor("the first answer on the WebSocket stream", () => messages.length === 1);

      // Now new connections reach the router directly: HTTP/2 works.
      sw.to = routerPort;
      await waitFor("the move back to HTTP/2", () => bridgeLogs.some((l) => /works again; moving the Register streams back to HTTP\/2/.test(l)));
      await waitFor("the new HTTP/2 stream beside the draining WebSocket one", () => router.stats().streams.length === 2);
      // The call in flight goes on where it is and completes.
      bidi.write(create(StreamingOutputCallRequestSchema, { responseParameters: [{ size: 22 }] }));
      bidi.end();
      const out = await got;
      assert.equal(out.status.code, grpc.status.OK, out.status.details);
      assert.deepEqual(messages, [11, 22]);
      // The drained WebSocket stream ends; the instance stays registered once, on HTTP/2.
      await waitFor("the WebSocket stream to drain away", () => router.stats().streams.length === 1);
      await waitFor("the Admin API to show the instance on HTTP/2", () => hub.snapshot().instances[0]?.transport === Instance_Transport.HTTP2);
      assert.deepEqual(
        router.instances().map((i) => i.id),
        ["mover"],
      );
      assert.ok(
        sw.firstBytes.some((c) => c.to === routerPort && c.head === "PRI * HTTP/2.0"),
        JSON.stringify(sw.firstBytes),
      );
      await everyKind(client, "mover");
    } finally {
      client.close();
      await bridge?.stop(100);
      await router.close(100);
      hub.close();
      await sw.close();
      await nginx.stop();
    }
  });

  it('transport "h2" does not fall back; "websocket" goes straight to WebSocket; a bad value is refused by name', async () => {
    const { router, target } = await startRouter();
    const nginx = await startHttp1Proxy(dir, Number(target.split(":")[1]));
    try {
      const logs: string[] = [];
      const h2only = createBridge(TestTunnel, interopImpl("h2-only"), {
        router: `127.0.0.1:${nginx.port}`,
        transport: "h2",
        logger: quietLog(logs),
        backoff: { initialMs: 50, maxMs: 200 },
      });
      void h2only.start().catch(() => {});
      await waitFor("two failed attempts", () => logs.filter((l) => /lost/.test(l)).length >= 2);
      assert.equal(
        logs.some((l) => /WebSocket/.test(l)),
        false,
        logs.join("\n"),
      );
      assert.equal(router.instances().length, 0);
      await h2only.stop(0);

      // A proxy of its own, whose log has only what the websocket bridge sent.
      const fresh = await startHttp1Proxy(dir, Number(target.split(":")[1]), "nginx-ws-only");
      try {
        const ws = await startBridge(`127.0.0.1:${fresh.port}`, "ws-only", { transport: "websocket" });
        assert.deepEqual(
          router.instances().map((i) => i.id),
          ["ws-only"],
        );
        await ws.stop(100);
        await waitFor("nginx's log of the Upgrade", () => /Register HTTP\/1\.1" 101/.test(fresh.accessLog()));
        assert.doesNotMatch(fresh.accessLog(), /PRI \*/, "the websocket bridge tried HTTP/2");
      } finally {
        await fresh.stop();
      }

      const bad = createBridge(TestTunnel, interopImpl("bad"), { router: target, transport: "http3" as never, logger: quietLog() });
      await assert.rejects(bad.start(), /BridgeOptions\.transport: expected auto, h2, websocket, got "http3"/);
    } finally {
      await router.close(100);
      await nginx.stop();
    }
  });

  it("a router with websocket: false answers the Upgrade 404 and the bridge keeps retrying", async () => {
    const { router, target } = await startRouter({ websocket: false });
    const logs: string[] = [];
    const bridge = createBridge(TestTunnel, interopImpl("refused"), {
      router: target,
      transport: "websocket",
      logger: quietLog(logs),
      backoff: { initialMs: 50, maxMs: 200 },
    });
    void bridge.start().catch(() => {});
    try {
      await waitFor("the refusal in the log", () => logs.some((l) => /lost/.test(l)));
      assert.match(logs.find((l) => /lost/.test(l))!, /over WebSocket: HTTP 404 Not Found: this router does not take WebSocket connections/);
      assert.equal(router.instances().length, 0);
    } finally {
      await bridge.stop(0);
      await router.close(100);
    }
  });

  it("on the wire: the Upgrade's headers are the call's metadata; messages both ways; a status with trailers", async () => {
    const server = new GrpcServer();
    let seen: ServerCall | undefined;
    server.add("/t.v1.S/Echo", {
      singleRequest: false,
      maxRequestBytes: 1024,
      websocket: true,
      handle: (call) => {
        seen = call;
        call.listen({
          message: (m) => {
            if (m.toString() !== "bye") return void call.write(Buffer.concat([Buffer.from("echo:"), m]));
            const trailers = new grpc.Metadata();
            trailers.set("grpc-retry-pushback-ms", "250");
            trailers.set("x-blob-bin", Buffer.from([1, 2, 3]));
            call.end(grpc.status.RESOURCE_EXHAUSTED, "too many registrations per second ✓", trailers);
          },
          halfClose: () => {},
          cancel: () => {},
        });
      },
    });
    const { port } = await server.listen("127.0.0.1:0");
    const channel = new WebSocketChannel(`127.0.0.1:${port}`);
    try {
      const md = new grpc.Metadata();
      md.set("authorization", "Bearer t0ken");
      md.set("x-id-bin", Buffer.from([9, 8]));
      const got: string[] = [];
      let status: grpc.StatusObject | undefined;
      const call = await channel.call("/t.v1.S/Echo", md, { onMessage: (m) => got.push(m.toString()), onStatus: (s) => (status = s) });
      call.write(Buffer.from("one"));
      await waitFor("the echo", () => got.length === 1);
      assert.deepEqual(got, ["echo:one"]);
      assert.equal(seen!.metadata.get("authorization")[0], "Bearer t0ken");
      assert.deepEqual(seen!.metadata.get("x-id-bin")[0], Buffer.from([9, 8]));
      assert.match(seen!.peer, /^127\.0\.0\.1:\d+$/);
      call.write(Buffer.from("bye"));
      await waitFor("the status", () => status !== undefined);
      assert.equal(status!.code, grpc.status.RESOURCE_EXHAUSTED);
      assert.equal(status!.details, "too many registrations per second ✓");
      assert.equal(status!.metadata.get("grpc-retry-pushback-ms")[0], "250");
      assert.deepEqual(status!.metadata.get("x-blob-bin")[0], Buffer.from([1, 2, 3]));
      // Only methods that ask for it are served over WebSocket.
      server.add("/t.v1.S/Plain", { singleRequest: true, maxRequestBytes: 1024, handle: () => {} });
      await assert.rejects(
        channel.call("/t.v1.S/Plain", new grpc.Metadata(), { onMessage: () => {}, onStatus: () => {} }),
        /HTTP 404 Not Found: no WebSocket endpoint at \/t\.v1\.S\/Plain/,
      );
    } finally {
      channel.close();
      await server.close(100);
    }
  });

  it("a Connect call over HTTP/1.1 that offers Upgrade: h2c (curl --http2) is served as the plain request it is", async () => {
    const { router, target } = await startRouter();
    const bridge = await startBridge(target, "plain-h1");
    try {
      const [host, port] = target.split(":");
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const post = () =>
        new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = http.request(
            {
              host,
              port: Number(port),
              agent,
              method: "POST",
              path: methodOf("UnaryCall"),
              headers: {
                "content-type": "application/json",
                connection: "Upgrade, HTTP2-Settings",
                upgrade: "h2c",
                "http2-settings": "AAMAAABkAARAAAAAAAIAAAAA",
              },
            },
            (res) => {
              let body = "";
              res.setEncoding("utf8");
              res.on("data", (d: string) => (body += d));
              res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
            },
          );
          req.on("upgrade", () => reject(new Error("the server upgraded")));
          req.on("error", reject);
          req.end(JSON.stringify({ responseSize: 2 }));
        });
      for (let i = 0; i < 2; i++) {
        const { status, body } = await post();
        assert.equal(status, 200, body);
        assert.equal(JSON.parse(body).instanceId, "plain-h1");
      }
      agent.destroy();
    } finally {
      await bridge.stop(100);
      await router.close(100);
    }
  });
});
