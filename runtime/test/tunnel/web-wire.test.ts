// gRPC-Web and Connect on the wire, with node's own HTTP clients over real sockets: the
// base64 "-text" form, HTTP/2 (h2c and TLS with ALPN, next to native gRPC), and hostile or
// malformed requests (bad base64, oversized bodies, bad timeouts) refused with a status.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as http from "node:http";
import * as http2 from "node:http2";
import * as https from "node:https";
import * as net from "node:net";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { AdminHub } from "../../src/admin/index.js";
import { loadChannelCredentials, loadServerCredentials } from "../../src/auth/index.js";
import { createRouterMetrics } from "../../src/metrics/index.js";
import { createRouter, GrpcServer, type Bridge, type Router } from "../../src/tunnel/index.js";
import { SimpleRequestSchema, SimpleResponseSchema, StreamingOutputCallRequestSchema, StreamingOutputCallResponseSchema } from "./gen/interop/v1/test_pb.js";
import { TestClient, TestTunnel, methodOf, quietLog, startBridge, startRouter, waitFor, type ImplProbe } from "./helpers.js";

const here = path.dirname(fileURLToPath(import.meta.url));

function frame(flags: number, body: Uint8Array): Buffer {
  const b = Buffer.alloc(5 + body.length);
  b[0] = flags;
  b.writeUInt32BE(body.length, 1);
  Buffer.from(body).copy(b, 5);
  return b;
}

/** gRPC-Web response body → messages and the trailer frame's fields. */
function parseGrpcWeb(body: Buffer): { messages: Buffer[]; trailers: Record<string, string> } {
  const messages: Buffer[] = [];
  const trailers: Record<string, string> = {};
  let at = 0;
  while (at < body.length) {
    const flags = body[at]!;
    const len = body.readUInt32BE(at + 1);
    const data = body.subarray(at + 5, at + 5 + len);
    at += 5 + len;
    if (flags & 0x80) {
      for (const line of data.toString("latin1").split("\r\n")) {
        const i = line.indexOf(":");
        if (i > 0) trailers[line.slice(0, i).trim()] = line.slice(i + 1).trim();
      }
    } else messages.push(Buffer.from(data));
  }
  return { messages, trailers };
}

function post1(
  url: string,
  headers: Record<string, string>,
  body: Buffer | string,
  agent?: http.Agent,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === "https:" ? https : http;
    const req = mod.request(u, { method: "POST", headers, ...(agent ? { agent } : {}) }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (d: Buffer) => parts.push(d));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts) }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

function post2(
  session: http2.ClientHttp2Session,
  path_: string,
  headers: Record<string, string>,
  body: Buffer,
): Promise<{ headers: http2.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ":method": "POST", ":path": path_, ...headers });
    let h: http2.IncomingHttpHeaders = {};
    const parts: Buffer[] = [];
    req.on("response", (r) => (h = r));
    req.on("data", (d: Buffer) => parts.push(d));
    req.on("end", () => resolve({ headers: h, body: Buffer.concat(parts) }));
    req.on("error", reject);
    req.end(body);
  });
}

const unaryRequest = (size: number) => toBinary(SimpleRequestSchema, create(SimpleRequestSchema, { responseSize: size }));
const streamRequest = toBinary(
  StreamingOutputCallRequestSchema,
  create(StreamingOutputCallRequestSchema, { responseParameters: [{ size: 1 }, { size: 2 }, { size: 3 }] }),
);

describe("gRPC-Web and Connect on the wire (plaintext)", () => {
  let router: Router;
  let bridge: Bridge;
  let base: string;
  let target: string;
  before(async () => {
    const r = await startRouter({ maxMessageBytes: 64 * 1024 });
    router = r.router;
    target = r.target;
    base = `http://${r.target}`;
    bridge = await startBridge(r.target, "wire");
  });
  after(async () => {
    await bridge.stop(100);
    await router.close(100);
  });

  it("gRPC-Web-text over HTTP/1.1: base64 request in pieces, base64 response with messages and the trailer frame", async () => {
    // Two padded base64 pieces one after another, as some clients send them.
    const raw = frame(0, unaryRequest(5));
    const text = raw.subarray(0, 4).toString("base64") + raw.subarray(4).toString("base64");
    const r = await post1(`${base}${methodOf("UnaryCall")}`, { "content-type": "application/grpc-web-text", accept: "application/grpc-web-text" }, text);
    assert.equal(r.status, 200);
    assert.equal(r.headers["content-type"], "application/grpc-web-text+proto");
    const { messages, trailers } = parseGrpcWeb(Buffer.from(r.body.toString("latin1"), "base64"));
    assert.equal(fromBinary(SimpleResponseSchema, messages[0]!).payload?.body.length, 5);
    assert.equal(trailers["grpc-status"], "0");
  });

  it("gRPC-Web-text server streaming", async () => {
    const r = await post1(
      `${base}${methodOf("StreamingOutputCall")}`,
      { "content-type": "application/grpc-web-text" },
      frame(0, streamRequest).toString("base64"),
    );
    const { messages, trailers } = parseGrpcWeb(Buffer.from(r.body.toString("latin1"), "base64"));
    assert.deepEqual(
      messages.map((m) => fromBinary(StreamingOutputCallResponseSchema, m).payload?.body.length),
      [1, 2, 3],
    );
    assert.equal(trailers["grpc-status"], "0");
  });

  it("gRPC-Web over HTTP/2 (h2c) on the port native gRPC uses at the same time", async () => {
    const session = http2.connect(base);
    const grpcClient = new TestClient(target);
    try {
      const [web, native] = await Promise.all([
        post2(session, methodOf("StreamingOutputCall"), { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" }, frame(0, streamRequest)),
        grpcClient.unary(methodOf("UnaryCall"), SimpleRequestSchema, SimpleResponseSchema, create(SimpleRequestSchema, { responseSize: 2 })),
      ]);
      assert.equal(web.headers[":status"], 200);
      const { messages, trailers } = parseGrpcWeb(web.body);
      assert.equal(messages.length, 3);
      assert.equal(trailers["grpc-status"], "0");
      assert.equal(native.res.payload?.body.length, 2);
    } finally {
      session.close();
      grpcClient.close();
    }
  });

  it("gRPC-Web client streaming and unknown methods: trailers-only, the message naming native gRPC", async () => {
    const r = await post1(`${base}${methodOf("StreamingInputCall")}`, { "content-type": "application/grpc-web+proto" }, frame(0, new Uint8Array(0)));
    assert.equal(r.status, 200);
    assert.equal(r.headers["grpc-status"], String(grpc.status.UNIMPLEMENTED));
    assert.match(
      decodeURIComponent(String(r.headers["grpc-message"])),
      /client-streaming method: gRPC-Web and Connect .* native gRPC \(application\/grpc over HTTP\/2\)/,
    );
    assert.equal(r.body.length, 0);
    const unknown = await post1(`${base}/interop.v1.TestService/Nope`, { "content-type": "application/grpc-web+proto" }, frame(0, new Uint8Array(0)));
    assert.equal(unknown.headers["grpc-status"], String(grpc.status.UNIMPLEMENTED));
  });

  it("hostile and malformed requests get a status, not a crash", async () => {
    const url = `${base}${methodOf("UnaryCall")}`;
    // Not base64.
    const bad = await post1(url, { "content-type": "application/grpc-web-text" }, "!!!!not base64!!!!");
    const badParsed = parseGrpcWeb(Buffer.from(bad.body.toString("latin1"), "base64"));
    assert.equal(badParsed.trailers["grpc-status"], String(grpc.status.INTERNAL));
    assert.match(decodeURIComponent(badParsed.trailers["grpc-message"]!), /not base64/);
    // A gRPC-Web message announced above the limit is refused before it is buffered.
    const big = Buffer.alloc(5);
    big.writeUInt32BE(1 << 30, 1);
    const huge = parseGrpcWeb((await post1(url, { "content-type": "application/grpc-web+proto" }, big)).body);
    assert.equal(huge.trailers["grpc-status"], String(grpc.status.RESOURCE_EXHAUSTED));
    // A Connect unary body above the limit: 429 resource_exhausted.
    const tooLarge = await post1(url, { "content-type": "application/proto" }, Buffer.alloc(100 * 1024));
    assert.equal(tooLarge.status, 429);
    assert.equal(JSON.parse(tooLarge.body.toString()).code, "resource_exhausted");
    // Malformed connect-timeout-ms: 400 invalid_argument naming the header.
    const timeout = await post1(url, { "content-type": "application/json", "connect-timeout-ms": "soon" }, "{}");
    assert.equal(timeout.status, 400);
    assert.match(JSON.parse(timeout.body.toString()).message, /connect-timeout-ms/);
    // Not JSON at all.
    const notJson = await post1(url, { "content-type": "application/json" }, "{");
    assert.equal(notJson.status, 400);
    assert.match(JSON.parse(notJson.body.toString()).message, /not valid JSON/);
    // Compressed: refused, naming identity.
    const gz = await post1(url, { "content-type": "application/proto", "content-encoding": "gzip" }, Buffer.alloc(3));
    assert.equal(gz.status, 501);
    // A content-type the router does not speak: 415 listing the ones it does.
    const xml = await post1(url, { "content-type": "text/xml" }, "<x/>");
    assert.equal(xml.status, 415);
    assert.match(xml.body.toString(), /application\/grpc-web/);
    // The router still serves.
    const ok = await post1(url, { "content-type": "application/json" }, '{"responseSize": 1}');
    assert.equal(ok.status, 200);
  });
});

describe("connections that never say which HTTP they speak", () => {
  it("are closed after firstBytesTimeoutMs; the server keeps serving", async () => {
    const server = new GrpcServer({ firstBytesTimeoutMs: 300 });
    const { port } = await server.listen("127.0.0.1:0");
    try {
      const closed = await new Promise<boolean>((resolve) => {
        // "PR" could still become HTTP/2's preface: the server has to wait, but not forever.
        const socket = net.connect(port, "127.0.0.1", () => socket.write("PR"));
        socket.on("error", () => {});
        socket.on("close", () => resolve(true));
        setTimeout(() => resolve(false), 30_000).unref();
      });
      assert.ok(closed, "the silent connection was not closed");
      const r = await post1(`http://127.0.0.1:${port}/x.v1.S/M`, { "content-type": "application/json" }, "{}");
      assert.equal(r.status, 501);
    } finally {
      await server.close(0);
    }
  });
});

describe("a browser that goes away", () => {
  it("cancels its call at the instance: a gRPC-Web stream over HTTP/1.1 whose connection closes", async () => {
    const probe: ImplProbe = { aborted: [], produced: 0, started: [] };
    const { router, target } = await startRouter();
    const bridge = await startBridge(target, "cancel", {}, probe);
    try {
      const request = toBinary(
        StreamingOutputCallRequestSchema,
        create(StreamingOutputCallRequestSchema, { responseParameters: [{ size: 1 }, { size: 1, intervalUs: 60_000_000 }] }),
      );
      await new Promise<void>((resolve, reject) => {
        const req = http.request(
          `http://${target}${methodOf("StreamingOutputCall")}`,
          { method: "POST", headers: { "content-type": "application/grpc-web+proto" } },
          (res) => {
            // The first message arrived: the page navigates away.
            res.once("data", () => {
              req.destroy();
              resolve();
            });
          },
        );
        req.on("error", () => {});
        req.on("close", () => resolve());
        req.end(frame(0, request));
        setTimeout(() => reject(new Error("no first message")), 30_000).unref();
      });
      await waitFor("the instance's handler to see the cancel", () => probe.aborted.some((a) => a.startsWith("streamingOutputCall")));
    } finally {
      await bridge.stop(100);
      await router.close(100);
    }
  });
});

describe("web calls in the router's metrics and rate limits", () => {
  it("count as calls of their method and share the method's rate limit with native gRPC", async () => {
    const hub = new AdminHub({});
    const metrics = createRouterMetrics({ hub });
    const { router, target } = await startRouter({
      hub,
      services: [{ tunnel: TestTunnel, rateLimit: { methods: { UnaryCall: { perSecond: 0.001, burst: 2 } } } }],
    });
    const bridge = await startBridge(target, "metered");
    const grpcClient = new TestClient(target);
    try {
      const url = `http://${target}${methodOf("UnaryCall")}`;
      assert.equal((await post1(url, { "content-type": "application/json" }, "{}")).status, 200);
      assert.equal(
        parseGrpcWeb((await post1(url, { "content-type": "application/grpc-web+proto" }, frame(0, unaryRequest(1)))).body).trailers["grpc-status"],
        "0",
      );
      // The burst of 2 is spent by the two web calls: native gRPC is refused now, and so is Connect.
      await assert.rejects(
        grpcClient.unary(methodOf("UnaryCall"), SimpleRequestSchema, SimpleResponseSchema, create(SimpleRequestSchema)),
        (e: grpc.ServiceError) => e.code === grpc.status.RESOURCE_EXHAUSTED,
      );
      const limited = await post1(url, { "content-type": "application/json" }, "{}");
      assert.equal(limited.status, 429);
      assert.match(JSON.parse(limited.body.toString()).message, /rate limit/);
      const text = await metrics.metrics();
      assert.match(text, /grpc_server_handled_total\{[^}]*grpc_method="UnaryCall"[^}]*grpc_code="OK"[^}]*\} 2/);
    } finally {
      grpcClient.close();
      await bridge.stop(100);
      await router.close(100);
      metrics.close();
    }
  });
});

describe("gRPC-Web and Connect with TLS (ALPN picks HTTP/1.1 or HTTP/2)", { timeout: 120_000 }, () => {
  let dir: string;
  let router: Router;
  let bridge: Bridge;
  let port: number;
  const f = (name: string) => path.join(dir, name);
  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-web-tls-"));
    execFileSync("bash", [path.join(here, "../auth/make-certs.sh"), dir]);
    router = createRouter({ services: [{ tunnel: TestTunnel }], logger: quietLog() });
    port = (await router.listen("127.0.0.1:0", loadServerCredentials({ cert: f("server.pem"), key: f("server.key") }))).port;
    bridge = await startBridge(`localhost:${port}`, "tls-web", { credentials: loadChannelCredentials({ ca: f("ca.pem") }) });
  });
  after(async () => {
    await bridge?.stop(100);
    await router?.close(100);
    rmSync(dir, { recursive: true, force: true });
  });

  it("HTTP/1.1 over TLS: Connect JSON", async () => {
    const agent = new https.Agent({ ca: readFileSync(f("ca.pem")), servername: "localhost" });
    const r = await post1(`https://localhost:${port}${methodOf("UnaryCall")}`, { "content-type": "application/json" }, '{"responseSize": 3}', agent);
    agent.destroy();
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body.toString()).instanceId, "tls-web");
  });

  it("HTTP/2 over TLS: gRPC-Web", async () => {
    const session = http2.connect(`https://localhost:${port}`, { ca: readFileSync(f("ca.pem")) });
    try {
      const r = await post2(session, methodOf("UnaryCall"), { "content-type": "application/grpc-web+proto" }, frame(0, unaryRequest(4)));
      const { messages, trailers } = parseGrpcWeb(r.body);
      assert.equal(fromBinary(SimpleResponseSchema, messages[0]!).instanceId, "tls-web");
      assert.equal(trailers["grpc-status"], "0");
    } finally {
      session.close();
    }
  });
});
