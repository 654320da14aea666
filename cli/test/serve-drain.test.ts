// `grpcrouter serve` on SIGTERM (what Kubernetes and systemd send): it stops taking new calls,
// lets the calls in flight finish within the drain grace, and exits 0.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { cli, echoModuleDir, echoSchemas, routerAddress, startPlainEcho, type CliProcess } from "./serve-helpers.js";

describe("grpcrouter serve drains on SIGTERM", { timeout: 180_000 }, () => {
  let tmp: string;
  let serve: CliProcess;
  let bridge: CliProcess;
  let plain: Awaited<ReturnType<typeof startPlainEcho>>;
  let schemas: Awaited<ReturnType<typeof echoSchemas>>;
  let router = "";

  before(async () => {
    tmp = echoModuleDir("grpcrouter-drain-");
    schemas = await echoSchemas(path.join(tmp, "proto"));
    plain = await startPlainEcho(schemas, "plain-1");
    serve = cli(["serve", "--root", "proto", "--port", "0", "--no-dashboard", "--no-watch", "--drain-grace", "60"], tmp);
    router = await routerAddress(serve);
    bridge = cli(["bridge", "--target", plain.address, "--router", router, "--root", "proto", "--id", "drain-1"], tmp);
    await bridge.waitFor(/drain-1 registered demo\.v1\.Echo/, "the bridge to register");
  });

  after(async () => {
    await bridge?.stop();
    await serve?.stop();
    await plain?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("a bidi call in flight finishes after SIGTERM; the router then exits 0", async () => {
    const req = schemas.message("SayRequest");
    const res = schemas.message("SayResponse");
    const client = new grpc.Client(router, grpc.credentials.createInsecure());
    const call = client.makeBidiStreamRequest(
      "/demo.v1.Echo/Chat",
      (b: Buffer) => b,
      (b: Buffer) => fromBinary(res, b) as unknown as { text: string },
      new grpc.Metadata(),
      { deadline: new Date(Date.now() + 120_000) },
    );
    const send = (text: string) => call.write(Buffer.from(toBinary(req, create(req, { text } as Record<string, unknown>))));
    const answers: string[] = [];
    const waiters: Array<() => void> = [];
    call.on("data", (m: { text: string }) => {
      answers.push(m.text);
      waiters.splice(0).forEach((w) => w());
    });
    const ended = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
    call.on("error", () => {});
    const answered = (n: number) =>
      new Promise<void>((resolve) => {
        const check = () => (answers.length >= n ? resolve() : waiters.push(check));
        check();
      });

    send("before");
    await answered(1); // the call is in flight, through the router and the bridge

    serve.child.kill("SIGTERM");
    await serve.waitFor(/draining: no new calls/, "the router to start draining");
    const fresh = new grpc.Client(router, grpc.credentials.createInsecure());
    const refused = await new Promise<grpc.ServiceError | null>((resolve) =>
      fresh.makeUnaryRequest(
        "/demo.v1.Echo/Say",
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.from(toBinary(req, create(req, { text: "new" } as Record<string, unknown>))),
        new grpc.Metadata(),
        { deadline: new Date(Date.now() + 30_000) },
        (e) => resolve(e),
      ),
    );
    fresh.close();
    assert.equal(refused?.code, grpc.status.UNAVAILABLE, `a new call during the drain is refused, got ${refused?.code} ${refused?.details}`);

    send("after");
    await answered(2);
    call.end();
    const status = await ended;
    client.close();

    assert.equal(status.code, grpc.status.OK, `the call in flight ends OK, got ${status.code} ${status.details}`);
    assert.deepEqual(answers, ["before", "after"]);
    assert.equal(await serve.exited, 0, serve.output);
  });
});
