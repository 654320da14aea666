// The security issue's attacks on `grpcrouter serve` + `grpcrouter bridge` and on `npm start`,
// as real processes on loopback: a maximal response through the sidecar (3), DNS rebinding
// and credential-like metadata on the dashboard (4), the dashboard of `npm start --host
// 0.0.0.0` (7).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { RouterHealth } from "@grpcrouter/runtime";
import { cli, echoClient, echoModuleDir, echoSchemas, healthOf, repoRoot, routerAddress, startPlainEcho, until, type CliProcess } from "./serve-helpers.js";

const TIMEOUT = 240_000;
const MiB = 1024 * 1024;

/** GET on 127.0.0.1:port with the given headers (fetch would not let us set Host). */
function get(port: number, pathname: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path: pathname, headers }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString("utf8")));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
  });
}

describe("attacks on grpcrouter serve + bridge", { timeout: TIMEOUT }, () => {
  let tmp: string;
  let serve: CliProcess;
  let bridge: CliProcess;
  let router = "";
  let dashboardPort = 0;
  let schemas: Awaited<ReturnType<typeof echoSchemas>>;
  let server: grpc.Server;
  // SayResponse{text, instance_id "plain"}: text + 12 bytes = 4,194,292 bytes encoded.
  const bigText = 4 * MiB - 24;

  before(async () => {
    tmp = echoModuleDir("grpcrouter-attacks-");
    schemas = await echoSchemas(path.join(tmp, "proto"));
    const SayRequest = schemas.message("SayRequest");
    const SayResponse = schemas.message("SayResponse");
    // An existing server whose Say answers "big" with a response of 4 MiB minus 12 bytes.
    server = new grpc.Server();
    server.addService(
      {
        Say: {
          path: "/demo.v1.Echo/Say",
          requestStream: false,
          responseStream: false,
          requestSerialize: (m: unknown) => Buffer.from(toBinary(SayRequest, m as never)),
          requestDeserialize: (b: Buffer) => fromBinary(SayRequest, b),
          responseSerialize: (m: unknown) => Buffer.from(toBinary(SayResponse, m as never)),
          responseDeserialize: (b: Buffer) => fromBinary(SayResponse, b),
        },
      } as grpc.ServiceDefinition,
      {
        Say: (call: grpc.ServerUnaryCall<{ text: string }, unknown>, cb: grpc.sendUnaryData<unknown>) =>
          cb(null, create(SayResponse, { text: call.request.text === "big" ? "x".repeat(bigText) : call.request.text, instanceId: "plain" } as never)),
      },
    );
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    serve = cli(["serve", "--root", "proto", "--port", "0", "--admin-port", "0", "--no-watch"], tmp);
    router = await routerAddress(serve);
    dashboardPort = Number((await serve.waitFor(/dashboard at http:\/\/127\.0\.0\.1:(\d+)/, "the dashboard address"))[1]);
    bridge = cli(["bridge", "--target", `127.0.0.1:${port}`, "--router", router, "--root", "proto", "--id", "sidecar"], tmp);
    await bridge.waitFor(/sidecar registered demo\.v1\.Echo/, "the bridge to register");
  });

  after(async () => {
    await bridge?.stop();
    await serve?.stop();
    server?.forceShutdown();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("answers a response of 4 MiB minus 12 bytes; the instance stays and a neighbour call succeeds", async () => {
    const client = echoClient(router, schemas);
    try {
      const { res } = await client.say("big");
      const size = toBinary(schemas.message("SayResponse"), create(schemas.message("SayResponse"), res as never)).length;
      assert.equal(size, 4 * MiB - 12, "the response is the maximal one");
      assert.equal((await client.say("small")).res.text, "small");
      assert.doesNotMatch(serve.output, /deregistered|closing instance/);
    } finally {
      client.close();
    }
  });

  it("refuses DNS rebinding: a Host that merely starts with 127., a foreign name or a foreign Origin gets 403", async () => {
    const own = `127.0.0.1:${dashboardPort}`;
    assert.equal((await get(dashboardPort, "/snapshot.json", { host: own })).status, 200);
    assert.equal((await get(dashboardPort, "/snapshot.json", { host: `localhost:${dashboardPort}` })).status, 200);
    for (const host of [`127.0.0.1.evil.example:${dashboardPort}`, `evil.example:${dashboardPort}`, "127.0.0.1", `127.0.0.1:${dashboardPort + 1}`]) {
      const r = await get(dashboardPort, "/snapshot.json", { host });
      assert.equal(r.status, 403, `Host ${host}`);
      assert.doesNotMatch(r.body, /calls|instances/);
    }
    assert.equal((await get(dashboardPort, "/snapshot.json", { host: own, origin: "http://evil.example" })).status, 403);
    assert.equal((await get(dashboardPort, "/snapshot.json", { host: own, origin: `http://${own}` })).status, 200);
  });

  it("redacts credential-like metadata on the dashboard by default (x-api-key, tokens, sessions)", async () => {
    const client = echoClient(router, schemas);
    try {
      const md = new grpc.Metadata();
      md.set("x-api-key", "key-123456");
      md.set("x-session-id", "sess-abcdef");
      md.set("x-goog-api-key", "goog-999");
      md.set("x-tenant", "acme");
      await client.say("hi", md);
    } finally {
      client.close();
    }
    const snap = (await get(dashboardPort, "/snapshot.json", { host: `127.0.0.1:${dashboardPort}` })).body;
    for (const secret of ["key-123456", "sess-abcdef", "goog-999"]) assert.ok(!snap.includes(secret), `${secret} is shown`);
    assert.match(snap, /acme/, "other metadata is shown");
  });
});

describe("npm start -- --host 0.0.0.0", { timeout: TIMEOUT }, () => {
  it("keeps the dashboard (message bodies) on loopback", async () => {
    const child = spawn(process.execPath, ["scripts/start.mjs", "--host", "0.0.0.0", "--port", "0", "--once"], {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (b: Buffer) => (out += b.toString("utf8")));
    child.stderr.on("data", (b: Buffer) => (out += b.toString("utf8")));
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    assert.equal(code, 0, out);
    const m = /dashboard (http:\/\/[^/\s]+)\//.exec(out);
    assert.ok(m, out);
    assert.equal(new URL(m[1]!).hostname, "127.0.0.1");
  });
});

describe("an impostor sidecar against serve --token-file --log-format json --audit-log", { timeout: TIMEOUT }, () => {
  it("refuses the impostor PERMISSION_DENIED-style (the sidecar exits 1 with the reason), logs JSON and audits both", async () => {
    const tmp = echoModuleDir("grpcrouter-audit-");
    writeFileSync(path.join(tmp, "tokens.txt"), "owner-token\nimpostor-token\n");
    writeFileSync(path.join(tmp, "owner"), "owner-token\n");
    writeFileSync(path.join(tmp, "impostor"), "impostor-token\n");
    const plain = await startPlainEcho(await echoSchemas(path.join(tmp, "proto")), "plain");
    const serve = cli(
      [
        "serve",
        "--root",
        "proto",
        "--port",
        "0",
        "--no-dashboard",
        "--no-watch",
        "--token-file",
        "tokens.txt",
        "--log-format",
        "json",
        "--audit-log",
        "audit.jsonl",
      ],
      tmp,
    );
    const procs: CliProcess[] = [serve];
    try {
      const router = await routerAddress(serve);
      const owner = cli(["bridge", "--target", plain.address, "--router", router, "--root", "proto", "--id", "payments-1", "--token-file", "owner"], tmp);
      procs.push(owner);
      await owner.waitFor(/payments-1 registered demo\.v1\.Echo/, "the owner to register");
      const impostor = cli(["bridge", "--target", plain.address, "--router", router, "--root", "proto", "--id", "payments-1", "--token-file", "impostor"], tmp);
      procs.push(impostor);
      assert.equal(await impostor.exited, 1);
      assert.match(impostor.stderr, /instance id "payments-1" of demo\.v1\.Echo is registered by another principal/);
      await serve.waitFor(/refused instance/, "the refusal in the log");
      // Every stderr line of the router is a JSON object.
      const lines = serve.stderr.split("\n").filter((l) => l.trim() !== "");
      for (const l of lines) assert.doesNotThrow(() => JSON.parse(l), l);
      assert.ok(lines.some((l) => (JSON.parse(l) as { msg: string }).msg.includes("registered by another principal")));
      const audit = readFileSync(path.join(tmp, "audit.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { kind: string; instanceId: string; principal: string; reason?: string });
      const registered = audit.find((e) => e.kind === "registered" && e.instanceId === "payments-1");
      const refused = audit.find((e) => e.kind === "refused" && e.instanceId === "payments-1");
      assert.ok(registered && refused, JSON.stringify(audit));
      assert.notEqual(registered.principal, refused.principal);
      assert.match(refused.reason!, /registered by another principal/);
      assert.ok(!JSON.stringify(audit).includes('token"'), "no secret in the audit trail");
      assert.ok(!JSON.stringify(audit).includes("owner-token") && !JSON.stringify(audit).includes("impostor-token"));
    } finally {
      for (const p of procs.reverse()) await p.stop();
      await plain.close();
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe("the sidecar reports its target's health and registers only what the target implements", { timeout: TIMEOUT }, () => {
  it("NOT_SERVING while the target is down, SERVING when it is back (connection probe: the target serves no health)", async () => {
    const tmp = echoModuleDir("grpcrouter-sidecar-");
    const schemas = await echoSchemas(path.join(tmp, "proto"));
    let plain = await startPlainEcho(schemas, "plain");
    const port = Number(plain.address.split(":")[1]);
    const serve = cli(["serve", "--root", "proto", "--port", "0", "--no-dashboard", "--no-watch"], tmp);
    let bridge: CliProcess | undefined;
    try {
      const router = await routerAddress(serve);
      bridge = cli(["bridge", "--target", plain.address, "--router", router, "--root", "proto", "--id", "side", "--health-interval", "0.3"], tmp);
      await bridge.waitFor(/side registered demo\.v1\.Echo/, "the bridge to register");
      await until("Echo SERVING", async () => (await healthOf(router, "demo.v1.Echo")) === "SERVING");
      await plain.close();
      await until("Echo NOT_SERVING once the target is down", async () => (await healthOf(router, "demo.v1.Echo")) === "NOT_SERVING");
      await bridge.waitFor(/is down: NOT_SERVING demo\.v1\.Echo \(connection probe\)/, "the sidecar to say so");
      plain = await startPlainEcho(schemas, "plain", port);
      await until("Echo SERVING again", async () => (await healthOf(router, "demo.v1.Echo")) === "SERVING");
      const client = echoClient(router, schemas);
      assert.equal((await client.say("back")).res.text, "back");
      client.close();
    } finally {
      await bridge?.stop();
      await serve.stop();
      await plain.close();
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it("follows the target's own grpc.health.v1 status while it stays up", async () => {
    const tmp = echoModuleDir("grpcrouter-sidecar-health-");
    const schemas = await echoSchemas(path.join(tmp, "proto"));
    const health = new RouterHealth(["demo.v1.Echo"]);
    health.set("demo.v1.Echo", true);
    const plain = await startPlainEcho(schemas, "plain", 0, undefined, (server) => health.addTo(server));
    const serve = cli(["serve", "--root", "proto", "--port", "0", "--no-dashboard", "--no-watch"], tmp);
    let bridge: CliProcess | undefined;
    try {
      const router = await routerAddress(serve);
      bridge = cli(["bridge", "--target", plain.address, "--router", router, "--root", "proto", "--id", "side", "--health-interval", "0.3"], tmp);
      await bridge.waitFor(/side registered demo\.v1\.Echo/, "the bridge to register");
      await until("Echo SERVING", async () => (await healthOf(router, "demo.v1.Echo")) === "SERVING");
      health.set("demo.v1.Echo", false);
      await until("Echo NOT_SERVING as the target says", async () => (await healthOf(router, "demo.v1.Echo")) === "NOT_SERVING");
      await bridge.waitFor(/is down: NOT_SERVING demo\.v1\.Echo \(grpc\.health\.v1\)/, "the sidecar to say so");
      health.set("demo.v1.Echo", true);
      await until("Echo SERVING again", async () => (await healthOf(router, "demo.v1.Echo")) === "SERVING");
    } finally {
      await bridge?.stop();
      await serve.stop();
      await plain.close();
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it("registers only the services the target's reflection lists", async () => {
    const tmp = echoModuleDir("grpcrouter-sidecar-refl-");
    writeFileSync(
      path.join(tmp, "proto/demo/v1/other.proto"),
      'syntax = "proto3";\npackage demo.v1;\nimport "demo/v1/echo.proto";\nservice Other {\n  rpc Say(SayRequest) returns (SayResponse);\n}\n',
    );
    const schemas = await echoSchemas(path.join(tmp, "proto"));
    // A target that implements Echo and serves reflection listing only Echo.
    const plain = await startPlainEcho(schemas, "plain", 0, ["demo.v1.Echo"]);
    const serve = cli(["serve", "--root", "proto", "--port", "0", "--no-dashboard", "--no-watch"], tmp);
    let bridge: CliProcess | undefined;
    try {
      const router = await routerAddress(serve);
      bridge = cli(["bridge", "--target", plain.address, "--router", router, "--root", "proto", "--id", "side"], tmp);
      await bridge.waitFor(/side registered demo\.v1\.Echo with/, "the bridge to register");
      assert.match(bridge.stderr, /not registering demo\.v1\.Other: .* does not implement it/);
      assert.doesNotMatch(bridge.stdout, /registered [^\n]*demo\.v1\.Other/);
      await until("Echo SERVING", async () => (await healthOf(router, "demo.v1.Echo")) === "SERVING");
      assert.equal(await healthOf(router, "demo.v1.Other"), "NOT_SERVING");
    } finally {
      await bridge?.stop();
      await serve.stop();
      await plain.close();
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe("client authorization in serve --config, hot-reloaded", { timeout: TIMEOUT }, () => {
  it("denies calls the config's clientAuth does not allow, before any instance, and follows edits", async () => {
    const tmp = echoModuleDir("grpcrouter-clientauth-");
    const schemas = await echoSchemas(path.join(tmp, "proto"));
    const plain = await startPlainEcho(schemas, "plain");
    const config = path.join(tmp, "router.json");
    writeFileSync(
      config,
      JSON.stringify({ services: {}, clientAuth: { services: { "demo.v1.Echo": [{ methods: ["Say"], certificates: ["ops.example"] }] } } }),
    );
    const serve = cli(["serve", "--root", "proto", "--port", "0", "--no-dashboard", "--config", "router.json"], tmp);
    let bridge: CliProcess | undefined;
    try {
      const router = await routerAddress(serve);
      bridge = cli(["bridge", "--target", plain.address, "--router", router, "--root", "proto", "--id", "side"], tmp);
      await bridge.waitFor(/side registered demo\.v1\.Echo/, "the bridge to register");
      const client = echoClient(router, schemas);
      try {
        await assert.rejects(
          client.say("hi"),
          (e: grpc.ServiceError) => e.code === grpc.status.UNAUTHENTICATED && /needs a client certificate or a bearer token/.test(e.details),
        );
        // Count is not covered by a rule: closed too.
        await assert.rejects(client.count("n", 1), (e: grpc.ServiceError) => e.code === grpc.status.UNAUTHENTICATED);
        writeFileSync(config, JSON.stringify({ services: {} }));
        await serve.waitFor(/client authorization removed/, "the reload");
        assert.equal((await client.say("now")).res.text, "now");
      } finally {
        client.close();
      }
      // A bad clientAuth edit keeps the running settings.
      writeFileSync(config, JSON.stringify({ services: {}, clientAuth: { services: { "*": [{ jwt: {} }] } } }));
      await serve.waitFor(/clientAuth\.jwks: jwt rules need a JWKS/, "the refusal of the bad edit");
    } finally {
      await bridge?.stop();
      await serve.stop();
      await plain.close();
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
