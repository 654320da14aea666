// `grpcrouter serve` and `grpcrouter bridge` as real processes: a router for the Echo module
// straight from its protos; a plain grpc-js Echo server made routable by the bridge sidecar;
// calls of all kinds through the router; reflection and health as grpcurl and probes see
// them; hot reload that keeps live registrations, and a broken proto that changes nothing.
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { createAdminClient, createReflectionClient } from "@grpcrouter/runtime";
import { cli, echoClient, echoModuleDir, echoProtoDir, echoSchemas, healthOf, poll, routerAddress, startPlainEcho, type CliProcess } from "./serve-helpers.js";

const TIMEOUT = 240_000;

describe("grpcrouter serve + bridge", { timeout: TIMEOUT }, () => {
  let tmp: string;
  let root: string;
  let serve: CliProcess;
  let bridge: CliProcess | undefined;
  let router = "";
  let dashboard = "";
  let metricsUrl = "";
  let plain: Awaited<ReturnType<typeof startPlainEcho>>;
  let schemas: Awaited<ReturnType<typeof echoSchemas>>;

  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-serve-"));
    root = path.join(tmp, "proto");
    cpSync(echoProtoDir, root, { recursive: true });
    schemas = await echoSchemas(root);
    plain = await startPlainEcho(schemas, "plain-1");
    serve = cli(["serve", "--root", "proto", "--port", "0", "--admin-port", "0", "--metrics-port", "0"], tmp);
    router = await routerAddress(serve);
    dashboard = (await serve.waitFor(/dashboard at (\S+)/, "the dashboard address"))[1]!;
    metricsUrl = (await serve.waitFor(/metrics at (\S+)/, "the metrics address"))[1]!;
  });

  after(async () => {
    await bridge?.stop();
    await serve?.stop();
    await plain?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("serves reflection for the module's services and says NOT_SERVING without instances", async () => {
    const refl = createReflectionClient(router);
    try {
      assert.deepEqual(await refl.listServices(), ["demo.v1.Echo"]);
      const registry = await refl.registryFor("demo.v1.Echo");
      assert.deepEqual(
        registry.getService("demo.v1.Echo")?.methods.map((m) => `${m.name}:${m.methodKind}`),
        ["Say:unary", "Count:server_streaming", "Collect:client_streaming", "Chat:bidi_streaming"],
      );
    } finally {
      refl.close();
    }
    assert.equal(await healthOf(router, ""), "SERVING");
    assert.equal(await healthOf(router, "demo.v1.Echo"), "NOT_SERVING");
    const res = await fetch(dashboard);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /grpcrouter/);
  });

  it("routes every call kind to an existing server through `grpcrouter bridge`", async () => {
    bridge = cli(["bridge", "--target", plain.address, "--router", router, "--root", "proto", "--id", "sidecar-1", "--label", "zone=test"], tmp);
    await bridge.waitFor(/sidecar-1 registered demo\.v1\.Echo/, "the bridge to register");
    await poll(
      () => healthOf(router, "demo.v1.Echo"),
      (s) => s === "SERVING",
      "Echo to be SERVING",
    );

    const client = echoClient(router, schemas);
    try {
      const md = new grpc.Metadata();
      md.set("x-suffix", "!");
      const { res, headers } = await client.say("hello", md);
      assert.deepEqual([res.text, res.instanceId], ["hello!", "plain-1"], "metadata reaches the server, the answer comes back");
      assert.deepEqual(headers.get("x-served-by"), ["plain-1"], "response headers come back");
      const counted = await client.count("n", 5);
      assert.deepEqual(
        counted.map((m) => m.index),
        [1, 2, 3, 4, 5],
      );
      const chat = await client.chat(["a", "b", "c"]);
      assert.deepEqual(
        chat.map((m) => m.text),
        ["a", "b", "c"],
      );
      await assert.rejects(client.say("fail"), (e: grpc.ServiceError) => e.code === grpc.status.FAILED_PRECONDITION && /asked to fail/.test(e.details));
      await assert.rejects(client.count("n", 5000), (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT);
    } finally {
      client.close();
    }

    const admin = createAdminClient(router);
    try {
      const snap = await admin.getSnapshot();
      const inst = snap.instances.find((i) => i.id === "sidecar-1");
      assert.equal(inst?.service, "demo.v1.Echo");
      assert.deepEqual(inst?.labels, { zone: "test" });
      assert.ok(
        snap.calls.some((c) => c.started?.method === "/demo.v1.Echo/Chat" && c.ended?.code === 0),
        "the admin stream saw the calls",
      );
    } finally {
      admin.close();
    }
  });

  it("counts those calls in Prometheus metrics, on the metrics port and the dashboard's /metrics", async () => {
    /** The value of one sample of the exposition, 0 when absent. */
    const sample = (text: string, name: string, labels: string) =>
      Number(
        text
          .split("\n")
          .find((l) => l.startsWith(`${name}{`) && labels.split(",").every((p) => l.includes(p)))
          ?.split(" ")
          .at(-1) ?? 0,
      );
    const res = await fetch(metricsUrl);
    assert.equal(res.status, 200);
    const text = await res.text();
    const say = 'grpc_service="demo.v1.Echo",grpc_method="Say"';
    assert.equal(sample(text, "grpc_server_handled_total", `${say},grpc_code="OK"`), 1);
    assert.equal(sample(text, "grpc_server_handled_total", `${say},grpc_code="FailedPrecondition"`), 1);
    assert.equal(sample(text, "grpc_server_msg_sent_total", 'grpc_method="Count"'), 5);
    assert.equal(sample(text, "grpcrouter_instances", 'service="demo.v1.Echo",health="serving"'), 1);
    assert.equal(sample(text, "grpcrouter_instance_calls_total", 'instance="sidecar-1",grpc_code="OK"'), 3);
    const viaDashboard = await (await fetch(new URL("metrics", dashboard))).text();
    assert.match(viaDashboard, /^grpcrouter_calls_in_flight\{service="demo\.v1\.Echo",instance="sidecar-1"\} 0$/m);
  });

  it("a reflection client can call a routed method knowing only what the router said", async () => {
    const refl = createReflectionClient(router, { version: "v1alpha" });
    const registry = await refl.registryFor("demo.v1.Echo").finally(() => refl.close());
    const method = registry.getService("demo.v1.Echo")!.methods.find((m) => m.name === "Say")!;
    const client = new grpc.Client(router, grpc.credentials.createInsecure());
    try {
      const res = await new Promise<Record<string, unknown>>((resolve, reject) =>
        client.makeUnaryRequest(
          "/demo.v1.Echo/Say",
          (m: unknown) => Buffer.from(toBinary(method.input, m as never)),
          (b: Buffer) => fromBinary(method.output, b) as unknown as Record<string, unknown>,
          create(method.input, { text: "by reflection" } as never),
          (e, r) => (e ? reject(e) : resolve(r!)),
        ),
      );
      assert.equal(res.text, "by reflection");
    } finally {
      client.close();
    }
  });

  it("hot-reloads an added service without dropping the live registration, and keeps serving through a broken proto", async () => {
    writeFileSync(
      path.join(root, "demo/v1/greeter.proto"),
      'syntax = "proto3";\npackage demo.v1;\nimport "demo/v1/echo.proto";\nservice Greeter {\n  rpc Greet(SayRequest) returns (SayResponse);\n}\n',
    );
    await serve.waitFor(/reloaded: added demo\.v1\.Greeter/, "the reload");
    const refl = createReflectionClient(router);
    try {
      assert.deepEqual(await refl.listServices(), ["demo.v1.Echo", "demo.v1.Greeter"]);
    } finally {
      refl.close();
    }
    assert.equal(await healthOf(router, "demo.v1.Greeter"), "NOT_SERVING");
    const client = echoClient(router, schemas);
    try {
      // Echo did not change: the bridge's registration survived the reload.
      assert.equal(await healthOf(router, "demo.v1.Echo"), "SERVING");
      assert.equal((await client.say("still here", undefined, 5000)).res.text, "still here");
      assert.doesNotMatch(bridge!.output, /draining|reconnect/i);

      writeFileSync(path.join(root, "demo/v1/greeter.proto"), 'syntax = "proto3";\npackage demo.v1;\nservice Greeter {\n  rpc Greet(Nope) returns (Nope)\n}\n');
      const diag = await serve.waitFor(/(proto[\\/]demo[\\/]v1[\\/]greeter\.proto:\d+:\d+: [^\n]+)/, "a diagnostic naming the file and line");
      assert.ok(diag[1]);
      await serve.waitFor(/still serving the previous configuration/, "the keep-running notice");
      assert.equal((await client.say("after the error", undefined, 5000)).res.text, "after the error");
      const refl2 = createReflectionClient(router);
      try {
        assert.deepEqual(await refl2.listServices(), ["demo.v1.Echo", "demo.v1.Greeter"], "the previous configuration stays");
      } finally {
        refl2.close();
      }
    } finally {
      client.close();
    }
  });

  it("keeps registrations through a message edit, and through a change of a service's methods: a call in flight goes on", async () => {
    const echoFile = path.join(root, "demo/v1/echo.proto");
    const original = readFileSync(echoFile, "utf8");
    // Fix the broken file from the previous step; Greeter comes back as it was.
    writeFileSync(
      path.join(root, "demo/v1/greeter.proto"),
      'syntax = "proto3";\npackage demo.v1;\nimport "demo/v1/echo.proto";\nservice Greeter {\n  rpc Greet(SayRequest) returns (SayResponse);\n}\n',
    );
    await serve.waitFor(/reloaded: no routed service changed/, "the fixed reload");
    const reloads = () => serve.stderr.split("\n").filter((l) => l.includes("reloaded:")).length;
    const before = reloads();
    // A new field in a message: the router never decodes payloads, so nothing is replaced.
    writeFileSync(echoFile, original.replace(/message SayRequest \{\n  string text = 1;/, "message SayRequest {\n  string text = 1;\n  string lang = 2;"));
    await poll(
      async () => reloads(),
      (n) => n > before,
      "the message-edit reload",
    );
    assert.match(
      serve.stderr
        .split("\n")
        .filter((l) => l.includes("reloaded:"))
        .at(-1)!,
      /no routed service changed/,
    );
    assert.doesNotMatch(bridge!.output, /drain/i);

    // A Chat call opened before Echo's methods change, answered once.
    const chatClient = new grpc.Client(router, grpc.credentials.createInsecure());
    const SayRequest = schemas.message("SayRequest");
    const SayResponse = schemas.message("SayResponse");
    const chat = chatClient.makeBidiStreamRequest(
      "/demo.v1.Echo/Chat",
      (m: { text: string }) => Buffer.from(toBinary(SayRequest, create(SayRequest, m))),
      (b: Buffer) => fromBinary(SayResponse, b) as unknown as { text: string },
      new grpc.Metadata(),
      { deadline: new Date(Date.now() + 120_000) },
    );
    const answers: string[] = [];
    const ended = new Promise<void>((resolve, reject) => {
      chat.on("data", (m: { text: string }) => answers.push(m.text));
      chat.on("error", reject);
      chat.on("end", resolve);
    });
    chat.write({ text: "before the change" });
    await poll(
      async () => answers.length,
      (n) => n === 1,
      "the first Chat answer",
    );

    // A new method changes Echo's tunnel: the one router replaces the service in place.
    writeFileSync(echoFile, original.replace("service Echo {", "service Echo {\n  rpc Shout(SayRequest) returns (SayResponse);"));
    await serve.waitFor(/reloaded: changed demo\.v1\.Echo/, "Echo to be replaced");
    // The call in flight goes on, on the same instance, which stayed registered.
    chat.write({ text: "after the change" });
    chat.end();
    await ended;
    chatClient.close();
    assert.deepEqual(answers, ["before the change", "after the change"]);
    assert.doesNotMatch(bridge!.output, /drain|reconnect|lost/i, "the bridge's registration survived the change");
    const client = echoClient(router, schemas);
    try {
      assert.equal((await client.say("after the change", undefined, 5000)).res.text, "after the change");
      assert.equal(await healthOf(router, "demo.v1.Echo"), "SERVING");
    } finally {
      client.close();
    }
    const admin = createAdminClient(router);
    try {
      const snap = await admin.getSnapshot();
      assert.deepEqual(
        snap.instances.map((i) => [i.id, i.health]),
        [["sidecar-1", 1]],
        "one instance, SERVING, registered all along",
      );
      assert.deepEqual(
        snap.services.map((s) => s.name),
        ["demo.v1.Echo", "demo.v1.Greeter"],
      );
      assert.deepEqual(
        snap.services.find((s) => s.name === "demo.v1.Echo")?.methods,
        ["Shout", "Say", "Count", "Collect", "Chat"],
        "the admin view lists the new method",
      );
    } finally {
      admin.close();
    }
    const refl = createReflectionClient(router);
    try {
      const registry = await refl.registryFor("demo.v1.Echo");
      assert.ok(
        registry.getService("demo.v1.Echo")?.methods.some((m) => m.name === "Shout"),
        "reflection describes the new method",
      );
    } finally {
      refl.close();
    }

    // A service that leaves the module leaves the router; the others keep their instances.
    rmSync(path.join(root, "demo/v1/greeter.proto"));
    await serve.waitFor(/reloaded: removed demo\.v1\.Greeter/, "Greeter to be removed");
    await assert.rejects(healthOf(router, "demo.v1.Greeter"), (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND);
    const greet = new grpc.Client(router, grpc.credentials.createInsecure());
    try {
      const code = await new Promise<number>((resolve) =>
        greet.makeUnaryRequest(
          "/demo.v1.Greeter/Greet",
          (b: Buffer) => b,
          (b: Buffer) => b,
          Buffer.alloc(0),
          { deadline: Date.now() + 5000 },
          (e) => resolve(e?.code ?? 0),
        ),
      );
      assert.equal(code, grpc.status.UNIMPLEMENTED, "a removed service's methods are no longer served");
    } finally {
      greet.close();
    }
    assert.equal(await healthOf(router, "demo.v1.Echo"), "SERVING");
    assert.doesNotMatch(bridge!.output, /drain|reconnect|lost/i);
  });

  it("says NOT_SERVING once the bridge is gone, and stops cleanly on Ctrl-C", async () => {
    assert.equal(await bridge!.stop(), 0);
    await poll(
      () => healthOf(router, "demo.v1.Echo"),
      (s) => s === "NOT_SERVING",
      "Echo to be NOT_SERVING",
    );
    const metrics = await (await fetch(metricsUrl)).text();
    assert.doesNotMatch(metrics, /sidecar-1/, "the instance's series left with it");
    assert.match(metrics, /^grpcrouter_instances\{service="demo\.v1\.Echo",health="serving"\} 0$/m);
    assert.equal(await serve.stop(), 0);
  });
});

describe("grpcrouter serve: bad input", { timeout: TIMEOUT }, () => {
  it("refuses a module that does not compile, naming file and line", async () => {
    const tmp = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-serve-bad-"));
    try {
      writeFileSync(path.join(tmp, "bad.proto"), 'syntax = "proto3";\npackage bad;\nservice S {\n  rpc M(Missing) returns (Missing);\n}\n');
      const p = cli(["serve", "--root", ".", "--port", "0", "--no-dashboard"], tmp);
      assert.equal(await p.exited, 1);
      assert.match(p.stderr, /bad\.proto:4:\d+: .*Missing/);
      assert.doesNotMatch(p.stdout, /listening/);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it("keeps the Admin service (call bodies) off a router listening beyond loopback unless --public-admin", async () => {
    const tmp = echoModuleDir("grpcrouter-serve-public-");
    const p = cli(["serve", "--root", "proto", "--host", "0.0.0.0", "--port", "0", "--no-dashboard", "--no-watch"], tmp);
    try {
      const address = await routerAddress(p);
      assert.match(p.stderr, /grpcrouter\.v1\.Admin is not served on 0\.0\.0\.0 .*--public-admin/);
      const admin = createAdminClient(address);
      await assert.rejects(admin.getSnapshot(), (e: { code?: number }) => e.code === 12, "UNIMPLEMENTED");
    } finally {
      await p.stop();
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it("explains a bad port", async () => {
    const p = cli(["serve", "--port", "http"], os.tmpdir());
    assert.equal(await p.exited, 2);
    assert.match(p.stderr, /--port http: not a port/);
  });

  it("bridge needs --target and --router", async () => {
    const p = cli(["bridge", "--router", "localhost:1"], os.tmpdir());
    assert.equal(await p.exited, 2);
    assert.match(p.stderr, /--target HOST:PORT is required/);
  });
});
