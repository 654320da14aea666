// The router's HTTP/2 GOAWAY (here: every connection closed gracefully a second after it
// opened, the way servers' max_connection_age and load balancers retire long connections):
// the bridge moves its Register stream to a new connection at once — no backoff, no call
// failed — and calls in flight finish on the old one.
import assert from "node:assert/strict";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import http2 from "node:http2";
import { createRouter } from "../../src/tunnel/index.js";
import { SimpleRequestSchema, SimpleResponseSchema } from "./gen/interop/v1/test_pb.js";
import { TestClient, TestTunnel, collect, methodOf, pacedStream, quietLog, startBridge, waitFor } from "./helpers.js";

test("GOAWAY from the router: the bridge registers on a new connection, calls in flight finish", { timeout: 120_000 }, async () => {
  // Every connection is told to go away after 1 s (GOAWAY, then closed once its calls end).
  const router = createRouter({ services: [{ tunnel: TestTunnel }], logger: quietLog() });
  const server = http2.createServer();
  server.on("stream", router.handler);
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
    const t = setTimeout(() => session.close(), 1000);
    session.once("close", () => clearTimeout(t));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const target = `127.0.0.1:${(server.address() as { port: number }).port}`;
  const logs: string[] = [];
  // A long backoff: had the bridge lost its stream instead of moving it, it would stay away.
  const bridge = await startBridge(target, "goaway", { backoff: { initialMs: 60_000 }, logger: quietLog(logs) });
  const client = new TestClient(target);
  try {
    // A call that outlives several GOAWAYs of the bridge's connection.
    const stream = pacedStream(client, 8, 400);
    const done = collect(stream);
    await waitFor(
      "two GOAWAYs handled by the bridge",
      () => logs.filter((l) => /sent GOAWAY; moving Register stream 0 to a new connection/.test(l)).length >= 2,
    );
    const { messages, status } = await done;
    assert.equal(status.code, grpc.status.OK, status.details);
    assert.equal(messages.length, 8);
    // New calls reach the instance over its current connection.
    for (let i = 0; i < 3; i++) {
      const { res } = await client.unary(
        methodOf("UnaryCall"),
        SimpleRequestSchema,
        SimpleResponseSchema,
        create(SimpleRequestSchema, { responseSize: 2 }),
        new grpc.Metadata(),
        {
          deadline: new Date(Date.now() + 20_000),
        },
      );
      assert.equal(res.instanceId, "goaway");
    }
    assert.deepEqual(
      router
        .instances()
        .map((i) => i.id)
        .filter((v, i, a) => a.indexOf(v) === i),
      ["goaway"],
    );
    assert.equal(logs.filter((l) => /lost \(/.test(l)).length, 0, `a Register stream was lost instead of moved:\n${logs.join("\n")}`);
  } finally {
    client.close();
    await bridge.stop(0);
    await router.close(0);
    server.close();
    for (const s of sessions) s.destroy();
  }
});
