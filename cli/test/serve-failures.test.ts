// `grpcrouter serve` where things go wrong, as real processes: a reload that removes a
// service, a change arriving while a reload runs, a dashboard or metrics port already taken,
// and a drain grace that runs out with a call still in flight (the forced shutdown).
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { createReflectionClient } from "@grpcrouter/runtime";
import { cli, echoClient, echoModuleDir, echoProtoDir, echoSchemas, poll, routerAddress, startPlainEcho, type CliProcess } from "./serve-helpers.js";

const TIMEOUT = 240_000;

const greeterProto = (method: string) =>
  `syntax = "proto3";\npackage demo.v1;\nmessage GreetRequest { string name = 1; }\nmessage GreetResponse { string text = 1; }\nservice Greeter {\n  rpc ${method}(GreetRequest) returns (GreetResponse);\n}\n`;

async function services(router: string): Promise<string[]> {
  const refl = createReflectionClient(router);
  try {
    return await refl.listServices();
  } finally {
    refl.close();
  }
}

/** The status of one unary call of `path` (an empty request) through `router`. */
function statusOf(router: string, method: string): Promise<grpc.status> {
  const client = new grpc.Client(router, grpc.credentials.createInsecure());
  return new Promise((resolve) =>
    client.makeUnaryRequest(
      method,
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.alloc(0),
      new grpc.Metadata(),
      { deadline: new Date(Date.now() + 30_000) },
      (e) => {
        client.close();
        resolve(e ? e.code : grpc.status.OK);
      },
    ),
  );
}

/** A port on 127.0.0.1 held by another listener until `release`. */
async function takenPort(): Promise<{ port: number; release(): Promise<void> }> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return { port, release: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

describe("grpcrouter serve: reloads that remove or race", { timeout: TIMEOUT }, () => {
  let tmp: string;
  let root: string;
  let serve: CliProcess;
  let bridge: CliProcess;
  let plain: Awaited<ReturnType<typeof startPlainEcho>>;
  let schemas: Awaited<ReturnType<typeof echoSchemas>>;
  let router = "";

  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-serve-fail-"));
    root = path.join(tmp, "proto");
    cpSync(echoProtoDir, root, { recursive: true });
    writeFileSync(path.join(root, "demo/v1/greeter.proto"), greeterProto("Greet"));
    schemas = await echoSchemas(root);
    plain = await startPlainEcho(schemas, "plain-1");
    serve = cli(["serve", "--root", "proto", "--port", "0", "--no-dashboard"], tmp);
    router = await routerAddress(serve);
    bridge = cli(["bridge", "--target", plain.address, "--router", router, "--root", "proto", "--id", "echo-1", "--service", "demo.v1.Echo"], tmp);
    await bridge.waitFor(/echo-1 registered demo\.v1\.Echo/, "the bridge to register");
  });

  after(async () => {
    await bridge?.stop();
    await serve?.stop();
    await plain?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("reloading away a service: its methods answer UNIMPLEMENTED, reflection forgets it, the others serve on", async () => {
    assert.deepEqual(await services(router), ["demo.v1.Echo", "demo.v1.Greeter"]);
    unlinkSync(path.join(root, "demo/v1/greeter.proto"));
    await serve.waitFor(/reloaded: removed demo\.v1\.Greeter/, "the reload");
    assert.deepEqual(await services(router), ["demo.v1.Echo"]);
    assert.equal(await statusOf(router, "/demo.v1.Greeter/Greet"), grpc.status.UNIMPLEMENTED);
    assert.equal(await statusOf(router, "/demo.v1.GreeterRouter/Register"), grpc.status.UNIMPLEMENTED);
    const client = echoClient(router, schemas);
    try {
      assert.equal((await client.say("still here")).res.text, "still here");
    } finally {
      client.close();
    }
    // Echo was not touched: its bridge kept its registration.
    assert.doesNotMatch(bridge.output, /draining|reconnect/i);
  });

  it("a change during a reload: the last edit wins", async () => {
    // Two edits 300 ms apart: past serve's 200 ms debounce, so the first reload has begun
    // and is usually still compiling (a buf build) when the second edit lands. The spacing
    // is not the proof; what must hold whatever the timing is that the router ends up
    // serving the second edit, not the first.
    writeFileSync(path.join(root, "demo/v1/greeter.proto"), greeterProto("First"));
    await new Promise((r) => setTimeout(r, 300));
    writeFileSync(path.join(root, "demo/v1/greeter.proto"), greeterProto("Second"));
    const methods = () =>
      poll(
        async () => {
          const refl = createReflectionClient(router);
          try {
            const files = await refl.fileContainingSymbol("demo.v1.Greeter");
            return files.flatMap((f) => f.service.flatMap((sv) => sv.method.map((m) => m.name))).join(",");
          } finally {
            refl.close();
          }
        },
        (names) => names === "Second",
        "the router to serve the second edit",
      );
    assert.equal(await methods(), "Second");
    assert.equal(await statusOf(router, "/demo.v1.Greeter/First"), grpc.status.UNIMPLEMENTED);
    // Served: no instance yet, so UNAVAILABLE (the method exists), not UNIMPLEMENTED.
    assert.equal(await statusOf(router, "/demo.v1.Greeter/Second"), grpc.status.UNAVAILABLE);
  });
});

describe("grpcrouter serve: ports already in use", { timeout: TIMEOUT }, () => {
  let tmp: string;
  before(() => {
    tmp = echoModuleDir("grpcrouter-serve-port-");
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it("a dashboard port in use: exit 1, naming the port and the cause", async () => {
    const taken = await takenPort();
    try {
      const serve = cli(["serve", "--root", "proto", "--port", "0", "--admin-port", String(taken.port), "--no-watch"], tmp);
      assert.equal(await serve.exited, 1, serve.output);
      assert.match(serve.stderr, new RegExp(`cannot start the dashboard on port ${taken.port}: .*EADDRINUSE`));
      assert.doesNotMatch(serve.stdout, /router listening/);
    } finally {
      await taken.release();
    }
  });

  it("a metrics port in use: exit 1, naming the port and the cause", async () => {
    const taken = await takenPort();
    try {
      const serve = cli(
        ["serve", "--root", "proto", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--metrics-port", String(taken.port), "--no-watch"],
        tmp,
      );
      assert.equal(await serve.exited, 1, serve.output);
      assert.match(serve.stderr, new RegExp(`cannot serve metrics on port ${taken.port}: .*EADDRINUSE`));
      assert.doesNotMatch(serve.stdout, /router listening/);
    } finally {
      await taken.release();
    }
  });
});

describe("grpcrouter serve: the drain grace runs out (forced shutdown)", { timeout: TIMEOUT }, () => {
  let tmp: string;
  let plain: Awaited<ReturnType<typeof startPlainEcho>>;
  let schemas: Awaited<ReturnType<typeof echoSchemas>>;
  let serve: CliProcess | undefined;
  let bridge: CliProcess | undefined;
  before(async () => {
    tmp = echoModuleDir("grpcrouter-serve-force-");
    schemas = await echoSchemas(path.join(tmp, "proto"));
    plain = await startPlainEcho(schemas, "plain-1");
  });
  after(async () => {
    await bridge?.stop();
    await serve?.stop();
    await plain?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it("a call still open when the grace ends is cut UNAVAILABLE, and the router exits 0", async () => {
    serve = cli(["serve", "--root", "proto", "--port", "0", "--no-dashboard", "--no-watch", "--drain-grace", "1"], tmp);
    const router = await routerAddress(serve);
    bridge = cli(["bridge", "--target", plain.address, "--router", router, "--root", "proto", "--id", "force-1"], tmp);
    await bridge.waitFor(/force-1 registered demo\.v1\.Echo/, "the bridge to register");

    const req = schemas.message("SayRequest");
    const res = schemas.message("SayResponse");
    const client = new grpc.Client(router, grpc.credentials.createInsecure());
    // A chat the client never ends: only the router's shutdown can end it.
    const call = client.makeBidiStreamRequest(
      "/demo.v1.Echo/Chat",
      (b: Buffer) => b,
      (b: Buffer) => fromBinary(res, b),
    );
    call.on("error", () => {});
    const ended = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
    const first = new Promise((resolve) => call.once("data", resolve));
    call.write(Buffer.from(toBinary(req, create(req, { text: "hello" } as Record<string, unknown>))));
    await first;

    serve.child.kill("SIGTERM");
    await serve.waitFor(/draining: no new calls; calls in flight have up to 1 s/, "the drain");
    const status = await ended;
    client.close();
    assert.equal(status.code, grpc.status.UNAVAILABLE, `${status.code} ${status.details}`);
    assert.match(status.details, /shutting down/);
    assert.equal(await serve.exited, 0, serve.output);
  });
});
