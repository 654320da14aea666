// The router closes the connection of a Register stream it gave up on (replaced by the
// instance's reconnect, or silent past its heartbeat timeout) when nothing else uses it,
// instead of leaving it open until TCP gives up. Instances here are written by hand over
// node:http2, so each one's connection is its own and its `close` is seen.
import assert from "node:assert/strict";
import http2 from "node:http2";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { decodeControl, decodeFrames, FrameEncoder, InstanceFrame, RouterFrame } from "../../src/tunnel/index.js";
import { HelloSchema, ProtocolVersion, WelcomeSchema, type Welcome } from "../../src/gen/grpcrouter/v1/tunnel_pb.js";
import { ManualClock } from "../../src/resilience/index.js";
import { startRouter, waitFor } from "./helpers.js";

const REGISTER = "/interop.v1.TestServiceRouter/Register";

/** One HTTP/2 connection of a hand-written instance, with its Register streams. */
class Connection {
  readonly session: http2.ClientHttp2Session;
  closed = false;

  constructor(target: string) {
    this.session = http2.connect(`http://${target}`);
    this.session.on("error", () => {});
    this.session.once("close", () => (this.closed = true));
  }

  /** Opens a Register stream, says Hello and waits for the Welcome; then says nothing more. */
  async register(hello: { instanceId: string; session: string; replacesSession?: string }): Promise<http2.ClientHttp2Stream> {
    const req = this.session.request({ ":method": "POST", ":path": REGISTER, "content-type": "application/grpc", te: "trailers" });
    req.on("error", () => {});
    let welcome: Welcome | undefined;
    let pending = Buffer.alloc(0);
    req.on("data", (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
        const message = pending.subarray(5, 5 + pending.readUInt32BE(1));
        pending = pending.subarray(5 + message.length);
        for (const f of decodeFrames(message)) {
          if (f.call === 0 && f.field === RouterFrame.Welcome) welcome = decodeControl(WelcomeSchema, f.body);
        }
      }
    });
    const enc = new FrameEncoder();
    enc.addControl(
      0,
      InstanceFrame.Hello,
      HelloSchema,
      create(HelloSchema, { protocolVersion: ProtocolVersion.PROTOCOL_VERSION_1, service: "interop.v1.TestService", ...hello }),
    );
    const body = enc.take();
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(body.length, 1);
    req.write(Buffer.concat([prefix, body]));
    await waitFor(`the Welcome of ${hello.instanceId}`, () => welcome !== undefined);
    assert.equal(welcome!.accepted, true);
    return req;
  }
}

test("a replaced session's connection is closed by the router, unless another stream still uses it", async () => {
  const { router, target } = await startRouter();
  const conns: Connection[] = [];
  const connect = () => {
    const c = new Connection(target);
    conns.push(c);
    return c;
  };
  try {
    // "shared" carries two instances' streams; one of them is replaced from a new connection.
    const shared = connect();
    await shared.register({ instanceId: "x", session: "x-1" });
    await shared.register({ instanceId: "y", session: "y-1" });
    await connect().register({ instanceId: "x", session: "x-2", replacesSession: "x-1" });
    // "stale" carries one stream only (a bridge's connection that died); it is replaced too.
    const stale = connect();
    await stale.register({ instanceId: "z", session: "z-1" });
    const fresh = connect();
    await fresh.register({ instanceId: "z", session: "z-2", replacesSession: "z-1" });
    await waitFor("the router to close the stale connection", () => stale.closed, 30_000);
    // Replaced before "stale" was, with the same grace: had it been closed, it would be by now.
    assert.equal(shared.closed, false, "a connection that still carries y's stream stays open");
    assert.equal(fresh.closed, false);
    assert.deepEqual(
      router
        .instances()
        .map((i) => i.id)
        .sort(),
      ["x", "y", "z"],
    );
    assert.equal(router.instances().find((i) => i.id === "z")?.streams, 1, "z is served by its new stream only");
  } finally {
    for (const c of conns) c.session.destroy();
    await router.close(0);
  }
});

test("a silent instance dropped for its heartbeat timeout loses its connection too", async () => {
  const clock = new ManualClock();
  const { router, target, logs } = await startRouter({ clock, heartbeatIntervalMs: 10_000 });
  const silent = new Connection(target);
  try {
    await silent.register({ instanceId: "silent", session: "s-1" });
    for (let step = 0; step < 40 && router.instances().length > 0; step++) await clock.advance(2_500);
    assert.match(logs.join("\n"), /closing instance "silent".*heartbeat timeout/);
    await waitFor("the router to close the silent instance's connection", () => silent.closed, 30_000);
  } finally {
    silent.session.destroy();
    await router.close(0);
  }
});
