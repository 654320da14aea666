// The Connect bridge calling a ServiceImpl directly: what its methods see in HandlerContext
// (request headers, -bin values, the deadline, context values) and what a grpc-js client gets
// back (response headers, trailers, ConnectError codes, raw messages, details as
// grpc-status-details-bin, error metadata). An interceptor makes the bridge use Connect's own
// handler, which must behave the same.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextKey, type Interceptor, type ServiceImpl } from "@connectrpc/connect";
import { findTrailerError } from "@connectrpc/connect/protocol-grpc";
import * as grpc from "@grpc/grpc-js";
import { createBridge, type Bridge, type Router } from "../../src/tunnel/index.js";
import {
  EchoStatusSchema,
  EmptySchema,
  SimpleRequestSchema,
  SimpleResponseSchema,
  StreamingOutputCallRequestSchema,
  StreamingOutputCallResponseSchema,
  type TestService,
} from "./gen/interop/v1/test_pb.js";
import { TestClient, TestTunnel, collect, errorOf, methodOf, quietLog, startRouter } from "./helpers.js";

const seen = createContextKey<string>("unset");

function impl(observed: Array<Record<string, unknown>>): Partial<ServiceImpl<typeof TestService>> {
  return {
    unaryCall(req, ctx) {
      ctx.values.set(seen, "set");
      observed.push({
        user: ctx.requestHeader.get("x-user"),
        bin: ctx.requestHeader.get("x-token-bin"),
        timeoutMs: ctx.timeoutMs(),
        value: ctx.values.get(seen),
        method: ctx.method.name,
        service: ctx.service.typeName,
        aborted: ctx.signal.aborted,
      });
      ctx.responseHeader.set("x-header", "h");
      ctx.responseTrailer.set("x-trailer-bin", Buffer.from([1, 2, 3]).toString("base64"));
      const m = req.responseStatus?.message ?? "";
      if (m === "plain error") throw new Error("secret internals");
      if (req.responseStatus && req.responseStatus.code !== 0) {
        const metadata = new Headers({ "x-error-meta": "em" });
        throw new ConnectError(m, req.responseStatus.code as Code, metadata, [{ desc: EchoStatusSchema, value: { code: 7, message: "detail ☺" } }]);
      }
      return { payload: { body: new Uint8Array(req.responseSize) }, instanceId: "direct" };
    },
    async *streamingOutputCall(req) {
      for (const p of req.responseParameters) yield create(StreamingOutputCallResponseSchema, { payload: { body: new Uint8Array(p.size) } });
      throw new ConnectError("stream broke", Code.DataLoss, undefined, [{ desc: EchoStatusSchema, value: { code: 15, message: "after messages" } }]);
    },
  };
}

/** The ConnectError a Connect client would make of this status (details decoded). */
function connectErrorOf(md: grpc.Metadata, code: number, message: string): ConnectError | undefined {
  const h = new Headers({ "grpc-status": String(code), "grpc-message": encodeURIComponent(message) });
  const bin = md.get("grpc-status-details-bin")[0];
  if (bin instanceof Buffer) h.set("grpc-status-details-bin", bin.toString("base64"));
  return findTrailerError(h);
}

for (const mode of ["direct", "through Connect's handler (an interceptor)"] as const) {
  describe(`Connect bridge, ${mode}`, { timeout: 120_000 }, () => {
    let router: Router;
    let target: string;
    let bridge: Bridge;
    let client: TestClient;
    const observed: Array<Record<string, unknown>> = [];
    const intercepted: string[] = [];

    before(async () => {
      ({ router, target } = await startRouter());
      const interceptor: Interceptor = (next) => async (req) => {
        intercepted.push(req.method.name);
        return next(req);
      };
      bridge = createBridge(TestTunnel, impl(observed), {
        router: target,
        instanceId: "connect",
        logger: quietLog(),
        ...(mode === "direct" ? {} : { connect: { interceptors: [interceptor] } }),
      });
      await bridge.start();
      client = new TestClient(target);
    });
    after(async () => {
      client.close();
      await bridge.stop(0);
      await router.close(0);
    });

    it("HandlerContext: request headers (-bin as base64), timeout, values, method; response headers and trailers arrive", async () => {
      const md = new grpc.Metadata();
      md.set("x-user", "ada");
      md.set("x-token-bin", Buffer.from([0xff, 0x00, 0x10]));
      const { res, headers, status } = await client.unary(
        methodOf("UnaryCall"),
        SimpleRequestSchema,
        SimpleResponseSchema,
        create(SimpleRequestSchema, { responseSize: 5 }),
        md,
        {
          deadline: new Date(Date.now() + 60_000),
        },
      );
      assert.equal(res.payload?.body.length, 5);
      assert.equal(headers.get("x-header")[0], "h");
      assert.deepEqual(status.metadata.get("x-trailer-bin")[0], Buffer.from([1, 2, 3]));
      const o = observed.at(-1)!;
      assert.equal(o.user, "ada");
      assert.equal(o.bin, Buffer.from([0xff, 0x00, 0x10]).toString("base64"));
      assert.ok(typeof o.timeoutMs === "number" && o.timeoutMs > 0 && o.timeoutMs <= 60_000, `timeoutMs ${String(o.timeoutMs)}`);
      assert.equal(o.value, "set");
      assert.equal(o.method, "UnaryCall");
      assert.equal(o.service, "interop.v1.TestService");
      assert.equal(o.aborted, false);
      if (mode !== "direct") assert.ok(intercepted.includes("UnaryCall"), "the interceptor ran");
    });

    it("a ConnectError: its code, raw message, details as grpc-status-details-bin, its metadata and the trailers", async () => {
      const message = "bad: 100% of it, ☺\r\n";
      const err = await errorOf(
        client.unary(
          methodOf("UnaryCall"),
          SimpleRequestSchema,
          SimpleResponseSchema,
          create(SimpleRequestSchema, { responseStatus: { code: Code.FailedPrecondition, message } }),
        ),
      );
      assert.equal(err.code, grpc.status.FAILED_PRECONDITION);
      assert.equal(err.details, message);
      assert.equal(err.metadata.get("x-error-meta")[0], "em");
      assert.deepEqual(err.metadata.get("x-trailer-bin")[0], Buffer.from([1, 2, 3]));
      const decoded = connectErrorOf(err.metadata, err.code, err.details);
      const details = decoded?.findDetails(EchoStatusSchema) ?? [];
      assert.equal(details.length, 1);
      assert.equal(details[0]!.code, 7);
      assert.equal(details[0]!.message, "detail ☺");
    });

    it("an error that is not a ConnectError is INTERNAL without its message", async () => {
      const err = await errorOf(
        client.unary(
          methodOf("UnaryCall"),
          SimpleRequestSchema,
          SimpleResponseSchema,
          create(SimpleRequestSchema, { responseStatus: { code: 0, message: "plain error" } }),
        ),
      );
      assert.equal(err.code, grpc.status.INTERNAL);
      assert.doesNotMatch(err.details, /secret internals/);
    });

    it("a stream that fails after messages: the messages, then the error with its details", async () => {
      const req = create(StreamingOutputCallRequestSchema, { responseParameters: [{ size: 1 }, { size: 2 }] });
      const { messages, status } = await collect(
        client.serverStream(methodOf("StreamingOutputCall"), StreamingOutputCallRequestSchema, StreamingOutputCallResponseSchema, req),
      );
      assert.deepEqual(
        messages.map((m) => m.payload?.body.length),
        [1, 2],
      );
      assert.equal(status.code, grpc.status.DATA_LOSS);
      assert.equal(status.details, "stream broke");
      const details = connectErrorOf(status.metadata, status.code, status.details)?.findDetails(EchoStatusSchema) ?? [];
      assert.equal(details[0]?.message, "after messages");
    });

    it("a method the impl leaves out is UNIMPLEMENTED", async () => {
      const err = await errorOf(client.unary(methodOf("EmptyCall"), EmptySchema, EmptySchema, create(EmptySchema)));
      assert.equal(err.code, grpc.status.UNIMPLEMENTED);
    });
  });
}
