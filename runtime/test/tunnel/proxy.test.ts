// Bridges behind an HTTP CONNECT proxy: a real tinyproxy (Debian's tinyproxy, started here
// on loopback) between the bridge and the router, with and without proxy credentials, to a
// plaintext and to a TLS router; the proxy environment variables and no_proxy as grpc-js
// reads them. The proxy's own log proves the Register stream went through it (or did not).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { startTinyproxy, type Tinyproxy } from "../../../scripts/test-support/tinyproxy.mjs";
import { createBridge, createRouter } from "../../src/tunnel/index.js";
import { loadChannelCredentials, loadServerCredentials } from "../../src/auth/index.js";
import { bypasses, parseProxyUrl, proxyFor } from "../../src/tunnel/bridge/proxy.js";
import { create } from "@bufbuild/protobuf";
import { SimpleRequestSchema, SimpleResponseSchema, StreamingOutputCallRequestSchema, StreamingOutputCallResponseSchema } from "./gen/interop/v1/test_pb.js";
import { TestClient, TestTunnel, collect, interopImpl, methodOf, quietLog, startBridge, startRouter, waitFor } from "./helpers.js";

const here = path.dirname(fileURLToPath(import.meta.url));

/** The proxy carried a CONNECT to `port` on loopback. */
const connected = (proxy: Tinyproxy, port: number) => new RegExp(`CONNECT (127\\.0\\.0\\.1|localhost):${port} `).test(proxy.log());

describe("bridge through an HTTP CONNECT proxy (tinyproxy)", { timeout: 180_000 }, () => {
  let dir: string;
  let open: Tinyproxy;
  let authed: Tinyproxy;
  const savedEnv = { ...process.env };

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-proxy-"));
    execFileSync("bash", [path.join(here, "..", "auth", "make-certs.sh"), dir]);
    open = await startTinyproxy(dir);
    authed = await startTinyproxy(dir, { user: "bridge", password: "pr0xy-pass" });
  });
  after(async () => {
    await open?.stop();
    await authed?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const restoreEnv = () => {
    for (const k of ["grpc_proxy", "https_proxy", "http_proxy", "no_grpc_proxy", "no_proxy"]) {
      if (savedEnv[k] === undefined) delete process.env[k];
      else process.env[k] = savedEnv[k];
    }
  };

  it("a plaintext router through a proxy without credentials: calls of every kind pass", async () => {
    const { router, target, port } = await startRouter();
    const bridge = await startBridge(target, "via-proxy", { proxy: open.url });
    const client = new TestClient(target);
    try {
      assert.ok(connected(open, port), `tinyproxy saw no CONNECT to the router:\n${open.log()}`);
      const { res } = await client.unary(methodOf("UnaryCall"), SimpleRequestSchema, SimpleResponseSchema, create(SimpleRequestSchema, { responseSize: 10 }));
      assert.equal(res.instanceId, "via-proxy");
      const req = create(StreamingOutputCallRequestSchema, { responseParameters: [{ size: 1 }, { size: 2 }, { size: 3 }] });
      const streamed = await collect(
        client.serverStream(methodOf("StreamingOutputCall"), StreamingOutputCallRequestSchema, StreamingOutputCallResponseSchema, req),
      );
      assert.equal(streamed.status.code, 0);
      assert.deepEqual(
        streamed.messages.map((m) => m.payload?.body.length),
        [1, 2, 3],
      );
    } finally {
      client.close();
      await bridge.stop(100);
      await router.close(100);
    }
  });

  it("a TLS router through a proxy that demands credentials: TLS runs inside the tunnel", async () => {
    const router = createRouter({ services: [{ tunnel: TestTunnel }], logger: quietLog() });
    const { port } = await router.listen("127.0.0.1:0", loadServerCredentials({ cert: path.join(dir, "server.pem"), key: path.join(dir, "server.key") }));
    const target = `localhost:${port}`;
    const bridge = await startBridge(target, "tls-via-proxy", { proxy: authed.url, credentials: loadChannelCredentials({ ca: path.join(dir, "ca.pem") }) });
    try {
      assert.ok(connected(authed, port), `tinyproxy saw no CONNECT to the router:\n${authed.log()}`);
      assert.deepEqual(
        router.instances().map((i) => i.id),
        ["tls-via-proxy"],
      );
    } finally {
      await bridge.stop(100);
      await router.close(100);
    }
  });

  it("the WebSocket transport through the proxy, to a plaintext and to a TLS router", async () => {
    const { router, target, port } = await startRouter();
    const bridge = await startBridge(target, "ws-via-proxy", { proxy: authed.url, transport: "websocket" });
    const client = new TestClient(target);
    const tlsRouter = createRouter({ services: [{ tunnel: TestTunnel }], logger: quietLog() });
    const { port: tlsPort } = await tlsRouter.listen(
      "127.0.0.1:0",
      loadServerCredentials({ cert: path.join(dir, "server.pem"), key: path.join(dir, "server.key") }),
    );
    let tlsBridge;
    try {
      assert.ok(connected(authed, port), `tinyproxy saw no CONNECT to the router:\n${authed.log()}`);
      const { res } = await client.unary(methodOf("UnaryCall"), SimpleRequestSchema, SimpleResponseSchema, create(SimpleRequestSchema, { responseSize: 10 }));
      assert.equal(res.instanceId, "ws-via-proxy");
      tlsBridge = await startBridge(`localhost:${tlsPort}`, "wss-via-proxy", {
        proxy: authed.url,
        transport: "websocket",
        credentials: loadChannelCredentials({ ca: path.join(dir, "ca.pem") }),
      });
      assert.ok(connected(authed, tlsPort), `tinyproxy saw no CONNECT to the TLS router:\n${authed.log()}`);
      assert.deepEqual(
        tlsRouter.instances().map((i) => i.id),
        ["wss-via-proxy"],
      );
    } finally {
      client.close();
      await bridge.stop(100);
      await tlsBridge?.stop(100);
      await router.close(100);
      await tlsRouter.close(100);
    }
  });

  it("a proxy that demands credentials refuses a bridge without them, with the proxy's status in the log", async () => {
    const { router, target, port } = await startRouter();
    const logs: string[] = [];
    const bridge = createBridge(TestTunnel, interopImpl("no-creds"), {
      router: target,
      proxy: `http://127.0.0.1:${authed.port}`,
      logger: quietLog(logs),
      backoff: { initialMs: 50, maxMs: 500 },
    });
    void bridge.start().catch(() => {});
    try {
      await waitFor("the refusal in the log", () => logs.some((l) => /lost/.test(l)));
      const line = logs.find((l) => /lost/.test(l))!;
      assert.match(
        line,
        new RegExp(`proxy http://127\\.0\\.0\\.1:${authed.port} refused CONNECT 127\\.0\\.0\\.1:${port}: 407 .*give credentials in the proxy URL`),
      );
      assert.equal(router.instances().length, 0);
    } finally {
      await bridge.stop(0);
      await router.close(100);
    }
  });

  it("grpc_proxy / https_proxy from the environment are used, and no_proxy bypasses them", async () => {
    const { router, target, port } = await startRouter();
    try {
      process.env.https_proxy = authed.url;
      let bridge = await startBridge(target, "env-proxy");
      assert.ok(connected(authed, port), `https_proxy was not used:\n${authed.log()}`);
      await bridge.stop(100);

      // no_proxy names the router: dialled directly (the open proxy, as grpc_proxy, stays unused).
      process.env.grpc_proxy = open.url;
      process.env.no_proxy = "example.com, 127.0.0.0/8";
      bridge = await startBridge(target, "no-proxy");
      assert.equal(connected(open, port), false, "no_proxy was not honoured");
      assert.deepEqual(
        router.instances().map((i) => i.id),
        ["no-proxy"],
      );
      await bridge.stop(100);

      // no_grpc_proxy takes precedence over no_proxy, as in grpc-js.
      process.env.no_grpc_proxy = "other.example";
      bridge = await startBridge(target, "grpc-proxy");
      assert.ok(connected(open, port), `grpc_proxy was not used:\n${open.log()}`);
      await bridge.stop(100);
    } finally {
      restoreEnv();
      await router.close(100);
    }
  });
});

describe("proxy selection", () => {
  const dest = { host: "router.internal", port: 9090 };
  it("reads grpc_proxy, then https_proxy, then http_proxy; an explicit proxy wins; false disables", () => {
    assert.equal(proxyFor(dest, undefined, { http_proxy: "http://h:1", https_proxy: "http://s:2" })?.display, "http://s:2");
    assert.equal(proxyFor(dest, undefined, { http_proxy: "h:1", grpc_proxy: "http://g:3" })?.display, "http://g:3");
    assert.equal(proxyFor(dest, undefined, { http_proxy: "h:1" })?.display, "http://h:1");
    assert.equal(proxyFor(dest, "http://x:4", { grpc_proxy: "http://g:3", no_proxy: "*" })?.display, "http://x:4");
    assert.equal(proxyFor(dest, false, { grpc_proxy: "http://g:3" }), undefined);
    assert.equal(proxyFor(dest, undefined, {}), undefined);
    // One from the environment that cannot be used is ignored with a word, as grpc-js does;
    // an explicit one is an error.
    const ignored: string[] = [];
    assert.equal(
      proxyFor(dest, undefined, { https_proxy: "https://p:8443" }, (w) => ignored.push(w)),
      undefined,
    );
    assert.match(ignored[0]!, /^https_proxy https:\/\/p:8443: only http:\/\/ proxies .*; dialling directly$/);
    assert.throws(() => proxyFor(dest, "https://p:8443"), /proxy https:\/\/p:8443: only http:\/\//);
  });
  it("no_proxy: names and their subdomains, CIDR ranges, ports, *", () => {
    assert.ok(bypasses("internal", dest));
    assert.ok(bypasses(".internal", dest));
    assert.ok(bypasses("router.internal:9090", dest));
    assert.equal(bypasses("router.internal:443", dest), false);
    assert.equal(bypasses("ternal", dest), false);
    assert.ok(bypasses("10.0.0.0/8", { host: "10.1.2.3", port: 1 }));
    assert.equal(bypasses("10.0.0.0/8", { host: "11.1.2.3", port: 1 }), false);
    assert.ok(bypasses("::1", { host: "::1", port: 1 }));
    assert.ok(bypasses("[::1]:5", { host: "::1", port: 5 }));
    assert.ok(bypasses("*", dest));
  });
  it("credentials come from the URL (percent-decoded); other schemes are refused by name", () => {
    const p = parseProxyUrl("http://us%40er:p%3Ass@proxy:3128", "--proxy");
    assert.equal(p.authorization, `Basic ${Buffer.from("us@er:p:ss").toString("base64")}`);
    assert.equal(p.display, "http://proxy:3128");
    assert.throws(() => parseProxyUrl("https://proxy:8443", "--proxy"), /--proxy https:\/\/proxy:8443: only http:\/\/ proxies/);
    assert.throws(() => parseProxyUrl("http://[bad", "https_proxy"), /https_proxy "http:\/\/\[bad": not a proxy URL/);
  });
});
