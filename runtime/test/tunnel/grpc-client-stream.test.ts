// GrpcClientStream (the bridge's gRPC client on node:http2) against a bare node:http2 server
// on loopback that answers the way servers and proxies really do, well or badly: messages
// split at any byte, trailers-only answers, HTTP errors without a gRPC status, resets,
// compressed messages nobody negotiated, oversized messages.
import assert from "node:assert/strict";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import type { MetadataEntry } from "../../src/gen/grpcrouter/v1/tunnel_pb.js";
import { GrpcClientStream } from "../../src/tunnel/bridge/grpc-client-stream.js";
import { Http2Channel } from "../../src/tunnel/bridge/http2-channel.js";

function frame(payload: Buffer, flag = 0): Buffer {
  const out = Buffer.alloc(5 + payload.length);
  out[0] = flag;
  out.writeUInt32BE(payload.length, 1);
  payload.copy(out, 5);
  return out;
}

const big = Buffer.alloc(100_000, 0xab);

function handle(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, _flags: number, rawHeaders: string[]): void {
  // Resets below end the server's side with an error too; nothing to report there.
  stream.on("error", () => {});
  const path = headers[":path"];
  const ok = { ":status": 200, "content-type": "application/grpc" };
  switch (path) {
    case "/t/Split": {
      // Two messages, written 7 bytes at a time: every boundary falls somewhere odd.
      stream.respond(ok, { waitForTrailers: true });
      const bytes = Buffer.concat([frame(Buffer.from("first")), frame(big)]);
      for (let i = 0; i < bytes.length; i += 7) stream.write(bytes.subarray(i, i + 7));
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0", "x-t": "done" }));
      stream.end();
      return;
    }
    case "/t/TrailersOnly":
      stream.respond({ ...ok, "grpc-status": "5", "grpc-message": encodeURIComponent("not here: 100% ☺"), "x-why": "gone" }, { endStream: true });
      return;
    case "/t/Http503":
      stream.respond({ ":status": 503, "content-type": "text/plain" }, { endStream: true });
      return;
    case "/t/Html":
      stream.respond({ ":status": 200, "content-type": "text/html" });
      stream.end("<html>");
      return;
    case "/t/Refused":
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    case "/t/Compressed":
      stream.respond(ok);
      stream.write(frame(Buffer.from("zz"), 1));
      return;
    case "/t/Big":
      stream.respond(ok);
      stream.write(frame(big));
      return;
    case "/t/Headers": {
      // The request's headers as the server got them (raw pairs, so repeats and order show).
      stream.respond(ok, { waitForTrailers: true });
      stream.write(frame(Buffer.from(JSON.stringify(rawHeaders))));
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
      stream.end();
      return;
    }
    case "/t/Echo": {
      stream.respond({ ...ok, "x-timeout": String(headers["grpc-timeout"] ?? "") }, { waitForTrailers: true });
      stream.on("data", (d: Buffer) => stream.write(d));
      stream.on("end", () => stream.end());
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
      return;
    }
  }
}

interface Result {
  headers: grpc.Metadata | undefined;
  messages: Buffer[];
  status: grpc.StatusObject;
}

describe("GrpcClientStream against a bare HTTP/2 server", { timeout: 60_000 }, () => {
  let server: http2.Http2Server;
  let channel: Http2Channel;

  before(async () => {
    server = http2.createServer();
    server.on("stream", handle);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    channel = new Http2Channel(`127.0.0.1:${(server.address() as AddressInfo).port}`, { proxy: false });
  });
  after(() => {
    channel.close(0);
    server.close();
  });

  async function call(
    path: string,
    send: Buffer[] = [],
    options: { maxMessageBytes?: number; deadline?: number } = {},
    metadata: grpc.Metadata | MetadataEntry[] = new grpc.Metadata(),
  ): Promise<Result> {
    const session = await channel.session();
    return new Promise<Result>((resolve) => {
      const messages: Buffer[] = [];
      let headers: grpc.Metadata | undefined;
      const s = new GrpcClientStream(
        session,
        path,
        metadata,
        {
          onHeaders: (md) => (headers = md),
          onMessage: (m) => messages.push(Buffer.from(m)),
          onStatus: (status) => resolve({ headers, messages, status }),
        },
        options,
      );
      for (const m of send) s.write(m);
      s.end();
    });
  }

  it("reassembles messages split at any byte, then reads the trailers", async () => {
    const r = await call("/t/Split");
    assert.equal(r.status.code, grpc.status.OK);
    assert.deepEqual(
      r.messages.map((m) => m.length),
      [5, big.length],
    );
    assert.equal(r.messages[0]!.toString(), "first");
    assert.ok(r.messages[1]!.equals(big));
    assert.equal(r.status.metadata.get("x-t")[0], "done");
  });

  it("a trailers-only answer: its status, decoded message and metadata, no headers", async () => {
    const r = await call("/t/TrailersOnly");
    assert.equal(r.status.code, grpc.status.NOT_FOUND);
    assert.equal(r.status.details, "not here: 100% ☺");
    assert.equal(r.status.metadata.get("x-why")[0], "gone");
    assert.equal(r.headers, undefined);
  });

  it("HTTP errors without a gRPC status map as gRPC says; a non-gRPC content type is UNKNOWN", async () => {
    assert.equal((await call("/t/Http503")).status.code, grpc.status.UNAVAILABLE);
    const html = await call("/t/Html");
    assert.equal(html.status.code, grpc.status.UNKNOWN);
    assert.match(html.status.details, /content-type text\/html/);
  });

  it("a refused stream is UNAVAILABLE (safe to retry elsewhere)", async () => {
    const r = await call("/t/Refused");
    assert.equal(r.status.code, grpc.status.UNAVAILABLE);
  });

  it("refuses a compressed message (none negotiated) and one over the size limit", async () => {
    const c = await call("/t/Compressed");
    assert.equal(c.status.code, grpc.status.INTERNAL);
    assert.match(c.status.details, /compressed/);
    const b = await call("/t/Big", [], { maxMessageBytes: 1000 });
    assert.equal(b.status.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.match(b.status.details, /100000 bytes, larger than the limit of 1000/);
  });

  it("sends length-prefixed messages (small and large) and the deadline as grpc-timeout", async () => {
    const r = await call("/t/Echo", [Buffer.from("a"), big], { deadline: Date.now() + 30_000 });
    assert.equal(r.status.code, grpc.status.OK);
    assert.deepEqual(
      r.messages.map((m) => m.length),
      [1, big.length],
    );
    const timeout = String(r.headers?.get("x-timeout")[0]);
    assert.match(timeout, /^\d+m$/);
    assert.ok(Number(timeout.slice(0, -1)) <= 30_000);
  });

  it("sends tunnel metadata entries as headers the way grpc-js would: -bin as base64, repeats in order, refused ones left out", async () => {
    const entry = (key: string, value: string | Uint8Array): MetadataEntry =>
      ({ $typeName: "grpcrouter.v1.MetadataEntry", key, value: typeof value === "string" ? Buffer.from(value) : value }) as MetadataEntry;
    const r = await call("/t/Headers", [], {}, [
      entry("X-Mixed-Case", "kept, lower-cased"),
      entry("x-r", "1"),
      entry("x-r", "2"),
      entry("x-b-bin", new Uint8Array([0, 1, 0xfe, 0xff])),
      // What grpc-js refuses (and node:http2 might, failing the call) is left out, the call goes on:
      entry("x-utf", "ü"),
      entry("x-ctl", "a\u0001b"),
      entry("bad key", "v"),
      entry("", "v"),
      // Transport keys are the client's own to set.
      entry("te", "nonsense"),
      entry("content-type", "text/plain"),
      entry("grpc-timeout", "1n"),
      entry(":path", "/elsewhere"),
    ]);
    assert.equal(r.status.code, grpc.status.OK, r.status.details);
    const raw = JSON.parse(r.messages[0]!.toString()) as string[];
    const pairs: Array<[string, string]> = [];
    for (let i = 0; i < raw.length; i += 2) pairs.push([raw[i]!, raw[i + 1]!]);
    const values = (k: string) => pairs.filter(([key]) => key === k).map(([, v]) => v);
    assert.deepEqual(values("x-mixed-case"), ["kept, lower-cased"]);
    assert.deepEqual(values("x-r"), ["1", "2"]);
    assert.deepEqual(Buffer.from(values("x-b-bin")[0]!, "base64"), Buffer.from([0, 1, 0xfe, 0xff]));
    for (const k of ["x-utf", "x-ctl", "bad key", ""]) assert.deepEqual(values(k), [], k);
    assert.deepEqual(values("te"), ["trailers"]);
    assert.deepEqual(values("content-type"), ["application/grpc"]);
    assert.deepEqual(values("grpc-timeout"), []);
    assert.deepEqual(values(":path"), ["/t/Headers"]);
    assert.deepEqual(values("user-agent"), ["grpcrouter-bridge"]);
  });
});
