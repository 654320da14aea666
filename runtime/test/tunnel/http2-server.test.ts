// The router's node:http2 gRPC server (runtime/src/tunnel/http2/) against real clients over
// loopback: grpc-js for what a gRPC client sees, node:http2 for the frames themselves.
import assert from "node:assert/strict";
import http2 from "node:http2";
import net from "node:net";
import { test } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { GrpcServer, createRouter, type ServerCall } from "../../src/tunnel/index.js";
import { TestTunnel, quietLog, waitFor } from "./helpers.js";

const identity = (b: Buffer) => b;
const PATH = "/test.v1.Wire/Echo";

/** A server whose Echo method does what the request's first byte says (see `behave`). */
async function startServer(options: { maxRequestBytes?: number; keepaliveTimeMs?: number; keepaliveTimeoutMs?: number } = {}) {
  const seen: Array<{ metadata: grpc.Metadata; deadline: number; request: Buffer }> = [];
  const cancelled: string[] = [];
  const server = new GrpcServer({ keepaliveTimeMs: options.keepaliveTimeMs, keepaliveTimeoutMs: options.keepaliveTimeoutMs });
  server.add(PATH, {
    singleRequest: true,
    maxRequestBytes: options.maxRequestBytes ?? 4 * 1024 * 1024,
    handle: (call: ServerCall, request) => {
      seen.push({ metadata: call.metadata, deadline: call.deadline, request: request! });
      call.listen({ message: () => {}, halfClose: () => {}, cancel: () => cancelled.push(request!.toString()) });
      behave(call, request!);
    },
  });
  const { port } = await server.listen("127.0.0.1:0");
  return { server, port, target: `127.0.0.1:${port}`, seen, cancelled };
}

function behave(call: ServerCall, request: Buffer): void {
  const what = request.toString();
  const md = call.metadata.clone();
  if (what === "echo") {
    call.sendHeaders(md);
    call.write(request);
    call.end(grpc.status.OK, "", md);
  } else if (what === "fail") {
    // Nothing sent before the status: a trailers-only response.
    const t = new grpc.Metadata();
    t.set("grpc-status-details-bin", Buffer.from([0x08, 0x05, 0xff, 0x00]));
    t.set("why-bin", Buffer.from([0, 1, 2, 255]));
    call.end(grpc.status.NOT_FOUND, "nothing here: café ✓ 100%", t);
  } else if (what === "hang") {
    // Never answers: the client's deadline or cancel ends it.
  }
}

function unary(client: grpc.Client, body: string | Buffer, options: { metadata?: grpc.Metadata; deadline?: number } = {}) {
  return new Promise<{ err: grpc.ServiceError | null; res?: Buffer; headers?: grpc.Metadata; trailers?: grpc.Metadata }>((resolve) => {
    let headers: grpc.Metadata | undefined;
    const call = client.makeUnaryRequest(
      PATH,
      identity,
      identity,
      typeof body === "string" ? Buffer.from(body) : body,
      options.metadata ?? new grpc.Metadata(),
      options.deadline ? { deadline: Date.now() + options.deadline } : {},
      (e, r) => {
        err = e;
        res = r;
      },
    );
    let err: grpc.ServiceError | null = null;
    let res: Buffer | undefined;
    call.on("metadata", (m) => (headers = m));
    // grpc-js emits the status after the callback ran.
    call.on("status", (s) => resolve({ err, res, headers, trailers: s.metadata }));
  });
}

/** One raw HTTP/2 request: what came back, frame by frame as node reports it. */
function rawRequest(port: number, headers: http2.OutgoingHttpHeaders, body?: Buffer) {
  return new Promise<{ headers: http2.IncomingHttpHeaders; trailers: http2.IncomingHttpHeaders | undefined; data: Buffer }>((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on("error", reject);
    const req = session.request({ ":method": "POST", ":path": PATH, "content-type": "application/grpc", te: "trailers", ...headers });
    let got: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders | undefined;
    const chunks: Buffer[] = [];
    req.on("response", (h) => (got = h));
    req.on("trailers", (t) => (trailers = t));
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("error", reject);
    req.on("close", () => {
      session.close();
      resolve({ headers: got, trailers, data: Buffer.concat(chunks) });
    });
    if (headers[":method"] === "GET") req.end();
    else req.end(body ?? frame(Buffer.from("echo")));
  });
}

function frame(b: Buffer, flag = 0): Buffer {
  const p = Buffer.alloc(5);
  p[0] = flag;
  p.writeUInt32BE(b.length, 1);
  return Buffer.concat([p, b]);
}

test("metadata: text and -bin values (repeated, any bytes) reach the handler and come back as headers and trailers", async () => {
  const { server, target, seen } = await startServer();
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  try {
    const md = new grpc.Metadata();
    md.add("x-text", "one");
    md.add("x-text", "two");
    md.add("x-raw-bin", Buffer.from([0, 255, 10, 13, 0x2c]));
    md.add("x-raw-bin", Buffer.from("second"));
    const { err, res, headers, trailers } = await unary(client, "echo", { metadata: md });
    assert.equal(err, null);
    assert.equal(res?.toString(), "echo");
    assert.deepEqual(seen[0]!.metadata.get("x-text"), ["one", "two"]);
    assert.deepEqual(seen[0]!.metadata.get("x-raw-bin"), [Buffer.from([0, 255, 10, 13, 0x2c]), Buffer.from("second")]);
    // Transport headers are not metadata.
    assert.deepEqual(seen[0]!.metadata.get("content-type"), []);
    assert.deepEqual(seen[0]!.metadata.get("te"), []);
    assert.deepEqual(headers?.get("x-raw-bin"), [Buffer.from([0, 255, 10, 13, 0x2c]), Buffer.from("second")]);
    // Sent as two header fields; node's client joins repeated text headers with ", " (as it would from grpc-js' server).
    assert.deepEqual(trailers?.get("x-text").join(", "), "one, two");
  } finally {
    client.close();
    await server.close(0);
  }
});

test("grpc-timeout becomes the call's deadline; a malformed one is refused", async () => {
  const { server, port, target, seen } = await startServer();
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  try {
    const before = Date.now();
    await unary(client, "echo", { deadline: 60_000 });
    const d = seen[0]!.deadline;
    assert.ok(d > before && d <= before + 60_000 + 1000, `deadline ${d - before} ms after the call started`);
    await unary(client, "echo");
    assert.equal(seen[1]!.deadline, Infinity);
    const bad = await rawRequest(port, { "grpc-timeout": "soon" });
    assert.equal(bad.headers["grpc-status"], String(grpc.status.INTERNAL));
    assert.match(String(bad.headers["grpc-message"]), /grpc-timeout/);
    assert.equal(seen.length, 2);
  } finally {
    client.close();
    await server.close(0);
  }
});

test("a client's deadline or cancel reaches the handler as a cancel", async () => {
  const { server, target, cancelled } = await startServer();
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  try {
    const { err } = await unary(client, "hang", { deadline: 200 });
    assert.equal(err?.code, grpc.status.DEADLINE_EXCEEDED);
    await waitFor("the handler to hear of the cancel", () => cancelled.includes("hang"));
  } finally {
    client.close();
    await server.close(0);
  }
});

test("an error before any response is trailers-only, with percent-encoded message, status details and -bin trailers", async () => {
  const { server, port, target } = await startServer();
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  try {
    const raw = await rawRequest(port, {}, frame(Buffer.from("fail")));
    // One HEADERS frame with END_STREAM: the status is in the response headers, no trailers, no data.
    assert.equal(raw.headers[":status"], 200);
    assert.equal(raw.headers["content-type"], "application/grpc");
    assert.equal(raw.headers["grpc-status"], String(grpc.status.NOT_FOUND));
    assert.equal(raw.headers["grpc-message"], "nothing here: caf%C3%A9 %E2%9C%93 100%25");
    assert.equal(raw.trailers, undefined);
    assert.equal(raw.data.length, 0);
    const { err } = await unary(client, "fail");
    assert.equal(err?.code, grpc.status.NOT_FOUND);
    assert.equal(err?.details, "nothing here: café ✓ 100%");
    assert.deepEqual(err?.metadata.get("grpc-status-details-bin"), [Buffer.from([0x08, 0x05, 0xff, 0x00])]);
    assert.deepEqual(err?.metadata.get("why-bin"), [Buffer.from([0, 1, 2, 255])]);
  } finally {
    client.close();
    await server.close(0);
  }
});

test("compressed requests are refused UNIMPLEMENTED (identity only), advertising grpc-accept-encoding", async () => {
  const { server, port, target, seen } = await startServer();
  const gzipClient = new grpc.Client(target, grpc.credentials.createInsecure(), { "grpc.default_compression_algorithm": 2 });
  try {
    const gz = await rawRequest(port, { "grpc-encoding": "gzip" });
    assert.equal(gz.headers["grpc-status"], String(grpc.status.UNIMPLEMENTED));
    assert.equal(gz.headers["grpc-accept-encoding"], "identity");
    assert.match(String(gz.headers["grpc-message"]), /gzip/);
    // The compressed flag with identity encoding is a broken message.
    const flagged = await rawRequest(port, {}, frame(Buffer.from("echo"), 1));
    assert.equal(flagged.headers["grpc-status"], String(grpc.status.UNIMPLEMENTED));
    assert.match(String(flagged.headers["grpc-message"]), /compressed/);
    const { err } = await unary(gzipClient, "echo");
    assert.equal(err?.code, grpc.status.UNIMPLEMENTED);
    assert.equal(seen.length, 0);
  } finally {
    gzipClient.close();
    await server.close(0);
  }
});

test("a request above the size limit is refused RESOURCE_EXHAUSTED naming its size and the limit, before it is buffered", async () => {
  const { server, target, seen } = await startServer({ maxRequestBytes: 1024 });
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  try {
    const { err } = await unary(client, Buffer.alloc(4096, 1));
    assert.equal(err?.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.match(err!.details, /4096 vs\. 1024/);
    assert.equal(seen.length, 0);
    assert.equal((await unary(client, "echo")).err, null);
  } finally {
    client.close();
    await server.close(0);
  }
});

test("the router refuses a client message above maxMessageBytes RESOURCE_EXHAUSTED", async () => {
  const router = createRouter({ services: [{ tunnel: TestTunnel }], logger: quietLog(), maxMessageBytes: 1000 });
  const { address } = await router.listen("127.0.0.1:0");
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  try {
    const err = await new Promise<grpc.ServiceError | null>((resolve) =>
      client.makeUnaryRequest("/interop.v1.TestService/UnaryCall", identity, identity, Buffer.alloc(5000), (e) => resolve(e)),
    );
    assert.equal(err?.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.match(err!.details, /5000 vs\. 1000/);
  } finally {
    client.close();
    await router.close(0);
  }
});

test("unknown methods are UNIMPLEMENTED; what is not gRPC gets HTTP's answer", async () => {
  const { server, port, target } = await startServer();
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  try {
    const err = await new Promise<grpc.ServiceError | null>((resolve) =>
      client.makeUnaryRequest("/test.v1.Wire/Nope", identity, identity, Buffer.alloc(0), (e) => resolve(e)),
    );
    assert.equal(err?.code, grpc.status.UNIMPLEMENTED);
    assert.match(err!.details, /\/test\.v1\.Wire\/Nope/);
    assert.equal((await rawRequest(port, { "content-type": "text/plain" })).headers[":status"], 415);
    assert.equal((await rawRequest(port, { ":method": "GET" })).headers[":status"], 405);
  } finally {
    client.close();
    await server.close(0);
  }
});

test("close(grace): GOAWAY on every connection; a call in flight still finishes", async () => {
  const server = new GrpcServer();
  let pending: ServerCall | undefined;
  server.add(PATH, { singleRequest: true, maxRequestBytes: 1024, handle: (call) => void (pending = call) });
  const { port } = await server.listen("127.0.0.1:0");
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on("error", () => {});
  const goaway = new Promise<number>((resolve) => session.once("goaway", (code) => resolve(code)));
  const req = session.request({ ":method": "POST", ":path": PATH, "content-type": "application/grpc", te: "trailers" });
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  const trailers = new Promise<http2.IncomingHttpHeaders>((resolve) => req.on("trailers", resolve));
  req.end(frame(Buffer.from("x")));
  await waitFor("the call to reach the handler", () => pending !== undefined);
  const closed = server.close(10_000);
  assert.equal(await goaway, http2.constants.NGHTTP2_NO_ERROR);
  pending!.write(Buffer.from("late but fine"));
  pending!.end(grpc.status.OK, "");
  assert.equal((await trailers)["grpc-status"], "0");
  assert.equal(Buffer.concat(chunks).subarray(5).toString(), "late but fine");
  await closed;
  assert.equal(server.connections, 0);
});

test("keepalive: connections are pinged; a peer that never answers is disconnected", async () => {
  const { server, port } = await startServer({ keepaliveTimeMs: 100, keepaliveTimeoutMs: 300 });
  try {
    // A live HTTP/2 client answers pings (node does it for us) and stays connected.
    const live = http2.connect(`http://127.0.0.1:${port}`);
    live.on("error", () => {});
    let pings = 0;
    live.on("ping", () => pings++);
    await waitFor("two pings to a live client", () => pings >= 2);
    assert.equal(live.closed || live.destroyed, false);
    // A peer that speaks the preface and then goes silent is dropped.
    const dead = net.connect(port, "127.0.0.1");
    dead.on("data", () => {});
    dead.write(Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]));
    const gone = await new Promise<boolean>((resolve) => dead.on("close", () => resolve(true)));
    assert.equal(gone, true);
    live.close();
  } finally {
    await server.close(0);
  }
});
