// Hostile input on the router's WebSocket endpoint (the Register stream over HTTP/1.1),
// bounded as on HTTP/2: Upgrades that are not a bridge's are refused with an HTTP status
// before anything is allocated; a message over the limit is refused from its frame header
// (close 1009) before it is buffered; garbage frames and malformed Register messages close
// that connection only; an instance that never reads has its Pong queue bounded and is
// dropped. Real sockets, a real `ws` client, and hand-made frames where ws would not send them.
import assert from "node:assert/strict";
import http from "node:http";
import { connect, type Socket } from "node:net";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { create, fromBinary } from "@bufbuild/protobuf";
import { WebSocket } from "ws";
import { HelloSchema, PingSchema, ProtocolVersion, WelcomeSchema } from "../../src/gen/grpcrouter/v1/tunnel_pb.js";
import { FrameEncoder, InstanceFrame, RouterFrame, decodeFrames } from "../../src/tunnel/index.js";
import { WEBSOCKET_PROTOCOL } from "../../src/tunnel/websocket-wire.js";
import { TestClient, methodOf, startBridge, startRouter } from "../tunnel/helpers.js";
import { SimpleRequestSchema, SimpleResponseSchema } from "../tunnel/gen/interop/v1/test_pb.js";
import { MiB, REGISTER, SERVICE, routerProcess, waitUntil } from "./attacker.js";

/** An Upgrade request with `headers`; resolves with the HTTP status and body of the answer (101: upgraded). */
function upgrade(target: string, path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const [host, port] = target.split(":");
    const req = http.request({
      host,
      port: Number(port),
      path,
      headers: {
        connection: "Upgrade",
        upgrade: "websocket",
        "sec-websocket-version": "13",
        "sec-websocket-key": randomBytes(16).toString("base64"),
        ...headers,
      },
    });
    req.on("upgrade", (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, body: "" });
    });
    req.on("response", (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

function hello(id: string): Buffer {
  const enc = new FrameEncoder();
  enc.addControl(
    0,
    InstanceFrame.Hello,
    HelloSchema,
    create(HelloSchema, { protocolVersion: ProtocolVersion.PROTOCOL_VERSION_1, instanceId: id, service: SERVICE }),
  );
  return Buffer.from(enc.take());
}

/** A ws client on the Register endpoint; resolves once open. */
async function wsInstance(
  target: string,
  options: { maxPayload?: number } = {},
): Promise<{ ws: WebSocket; closed: Promise<{ code: number; reason: string }> }> {
  const ws = new WebSocket(`ws://${target}${REGISTER}`, [WEBSOCKET_PROTOCOL], { perMessageDeflate: false, ...options });
  ws.on("error", () => {});
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })));
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("close", () => reject(new Error("closed before open")));
  });
  return { ws, closed };
}

/** Waits for the router's Welcome on `ws`. */
function welcomed(ws: WebSocket): Promise<boolean> {
  return new Promise((resolve) => {
    const onMessage = (data: Buffer) => {
      for (const f of decodeFrames(data)) {
        if (f.call === 0 && f.field === RouterFrame.Welcome) {
          ws.off("message", onMessage);
          resolve(fromBinary(WelcomeSchema, f.body).accepted);
        }
      }
    };
    ws.on("message", onMessage);
    ws.once("close", () => resolve(false));
  });
}

/** The router still serves: a bridge registers and a call goes through it. */
async function stillServes(target: string): Promise<void> {
  const bridge = await startBridge(target, "survivor", { transport: "websocket" });
  const client = new TestClient(target);
  try {
    const { res } = await client.unary(methodOf("UnaryCall"), SimpleRequestSchema, SimpleResponseSchema, create(SimpleRequestSchema, { responseSize: 1 }));
    assert.equal(res.instanceId, "survivor");
  } finally {
    client.close();
    await bridge.stop(100);
  }
}

describe("hostile input on the WebSocket endpoint", { timeout: 180_000 }, () => {
  it("Upgrades that are not a bridge's are answered with an HTTP status, not a WebSocket", async () => {
    const { router, target } = await startRouter();
    try {
      const proto = { "sec-websocket-protocol": WEBSOCKET_PROTOCOL };
      assert.equal((await upgrade(target, REGISTER, proto)).status, 101);
      const noProtocol = await upgrade(target, REGISTER, {});
      assert.equal(noProtocol.status, 400);
      assert.match(noProtocol.body, /subprotocol grpcrouter\.v1 is required/);
      // A page in a browser (which always sends Origin) must not register instances.
      const browser = await upgrade(target, REGISTER, { ...proto, origin: "https://evil.example" });
      assert.equal(browser.status, 403);
      // Only Register streams: the service's own methods are not callable over WebSocket.
      const method = await upgrade(target, methodOf("UnaryCall"), proto);
      assert.equal(method.status, 404);
      assert.match(method.body, /only Register streams are served over WebSocket/);
      assert.equal((await upgrade(target, "/nothing/here", proto)).status, 404);
      assert.equal(router.stats().streams.length, 0);
    } finally {
      await router.close(100);
    }
  });

  it("a message over the limit is refused from its header (close 1009); a header announcing 1 TiB too", async () => {
    const { router, target, logs } = await startRouter({ maxMessageBytes: 64 * 1024 });
    try {
      const a = await wsInstance(target);
      a.ws.send(hello("big"));
      assert.equal(await welcomed(a.ws), true);
      a.ws.send(Buffer.alloc(4 * MiB));
      assert.equal((await a.closed).code, 1009);
      await waitUntil("the stream to be gone", () => router.stats().streams.length === 0);
      assert.ok(
        logs.some((l) => /deregistered instance "big".*over the limit/.test(l)),
        logs.join("\n"),
      );

      // By hand: a masked binary frame whose 64-bit length says 1 TiB, and no payload.
      const sock = await rawUpgrade(target);
      const header = Buffer.alloc(14);
      header[0] = 0x82; // FIN + binary
      header[1] = 0x80 | 127; // masked, 64-bit length
      header.writeBigUInt64BE(2n ** 40n, 2);
      randomBytes(4).copy(header, 10);
      const closedCode = readCloseCode(sock);
      sock.write(header);
      assert.equal(await closedCode, 1009);
      await stillServes(target);
    } finally {
      await router.close(100);
    }
  });

  it("garbage: bytes that are no WebSocket frame, a text message, a malformed Register message — each closes its connection only", async () => {
    const { router, target, logs } = await startRouter();
    try {
      // Not WebSocket framing at all (an unmasked frame from a client, reserved bits, …).
      const sock = await rawUpgrade(target);
      const code = readCloseCode(sock);
      sock.write(Buffer.concat([Buffer.from([0xff, 0x7f]), randomBytes(200)]));
      assert.equal(await code, 1002);

      const text = await wsInstance(target);
      text.ws.send("hello?");
      const t = await text.closed;
      assert.equal(t.code, 4013); // INTERNAL
      assert.match(t.reason, /text WebSocket message/);

      const garbage = await wsInstance(target);
      garbage.ws.send(randomBytes(1000));
      const g = await garbage.closed;
      assert.equal(g.code, 4003); // INVALID_ARGUMENT
      assert.match(g.reason, /^grpcrouter: (malformed Register message|expected Hello)/);
      assert.ok(
        logs.some((l) => /closing Register stream from .*: (malformed Register message|expected Hello)/.test(l)),
        logs.join("\n"),
      );
      assert.equal(router.stats().streams.length, 0);
      await stillServes(target);
    } finally {
      await router.close(100);
    }
  });

  it("registration limits count WebSocket Register streams like HTTP/2 ones (per address)", async () => {
    const { router, target, logs } = await startRouter({ registrationLimits: { perAddress: 2 } });
    const open: WebSocket[] = [];
    try {
      for (const id of ["a", "b"]) {
        const i = await wsInstance(target);
        open.push(i.ws);
        i.ws.send(hello(id));
        assert.equal(await welcomed(i.ws), true);
      }
      const third = await wsInstance(target);
      open.push(third.ws);
      const closed = await third.closed;
      assert.equal(closed.code, 4008); // RESOURCE_EXHAUSTED
      assert.match(closed.reason, /too many Register streams from 127\.0\.0\.1 \(limit 2\)/);
      assert.ok(
        logs.some((l) => /refused a Register stream from 127\.0\.0\.1:\d+: too many Register streams/.test(l)),
        logs.join("\n"),
      );
      assert.equal(router.stats().streams.length, 2);
    } finally {
      for (const ws of open) ws.terminate();
      await router.close(100);
    }
  });

  it("an instance that floods Pings over WebSocket and never reads: the Pong queue is bounded, the stream is dropped", async () => {
    const rp = await routerProcess({ heartbeatIntervalMs: 1000, maxQueuedBytesPerStream: MiB });
    try {
      const a = await wsInstance(rp.target);
      a.ws.send(hello("ws-pinger"));
      assert.equal(await welcomed(a.ws), true);
      a.ws.pause(); // never reads again
      const enc = new FrameEncoder();
      const ping = create(PingSchema, { nonce: 12345n });
      while (enc.size < MiB) enc.addControl(0, InstanceFrame.Ping, PingSchema, ping);
      const message = Buffer.from(enc.take());
      // Sends until 60 MiB went out or the router stopped reading (our buffer stops draining).
      let sent = 0;
      while (sent < 60 * MiB && a.ws.readyState === WebSocket.OPEN) {
        a.ws.send(message);
        sent += message.length;
        if (a.ws.bufferedAmount > 8 * MiB) {
          const before = a.ws.bufferedAmount;
          await new Promise((r) => setTimeout(r, 3000));
          if (a.ws.bufferedAmount >= before) break;
        }
      }
      const unsent = a.ws.bufferedAmount;
      await waitUntil("the router to drop the instance that does not read", async () =>
        (await rp.measure()).logs.some((l) => /closing instance "ws-pinger".*does not read its Register stream/.test(l)),
      );
      const after = await rp.measure();
      const line = after.logs.find((l) => /does not read its Register stream/.test(l))!;
      const queued = Number(/\((\d+) bytes queued/.exec(line)![1]);
      const read = sent - unsent;
      console.log(
        `ws ping flood: the router read at most ${(read / MiB).toFixed(0)} of ${(sent / MiB).toFixed(0)} MiB sent; Pong bytes queued when it dropped the instance ${(queued / MiB).toFixed(2)} MiB`,
      );
      assert.ok(read < 45 * MiB, `the router read ${read} bytes of Pings`);
      assert.ok(queued <= 4 * MiB, `queued ${queued}`);
      assert.equal(after.stats.streams.length, 0, "the stream is gone");
      a.ws.terminate();
    } finally {
      await rp.close();
    }
  });
});

/** A TCP connection that did the WebSocket handshake by hand, for frames ws would not send. */
async function rawUpgrade(target: string): Promise<Socket> {
  const [host, port] = target.split(":");
  const sock = connect(Number(port), host);
  sock.on("error", () => {});
  await new Promise<void>((resolve) => sock.once("connect", () => resolve()));
  sock.write(
    `GET ${REGISTER} HTTP/1.1\r\nHost: ${target}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Protocol: ${WEBSOCKET_PROTOCOL}\r\n\r\n`,
  );
  await new Promise<void>((resolve, reject) => {
    let got = "";
    const onData = (d: Buffer) => {
      got += d.toString("latin1");
      if (!got.includes("\r\n\r\n")) return;
      sock.off("data", onData);
      if (!got.startsWith("HTTP/1.1 101")) return reject(new Error(got));
      const rest = Buffer.from(got.slice(got.indexOf("\r\n\r\n") + 4), "latin1");
      if (rest.length) sock.unshift(rest);
      resolve();
    };
    sock.on("data", onData);
  });
  return sock;
}

/** The code of the first close frame the router sends on `sock` (0 if the socket closes without one). */
function readCloseCode(sock: Socket): Promise<number> {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    sock.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      // Server frames are unmasked; a close frame is opcode 8 with the code in its first 2 bytes.
      while (buf.length >= 2) {
        const len = buf[1]! & 0x7f;
        if (len > 125 || buf.length < 2 + len) return;
        if ((buf[0]! & 0x0f) === 8) return resolve(len >= 2 ? buf.readUInt16BE(2) : 1005);
        buf = buf.subarray(2 + len);
      }
    });
    sock.once("close", () => resolve(0));
  });
}
