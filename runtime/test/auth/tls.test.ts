// TLS and token authentication over real gRPC: a router listening with TLS (and mTLS),
// bridges dialling it with TLS and sending a token, clients calling through it. Certificates
// are made at test time by make-certs.sh (openssl).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http2 from "node:http2";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { createBridge, createRouter, type Router } from "../../src/tunnel/index.js";
import { loadChannelCredentials, loadServerCredentials, tokenAuthorizer, tokenCredentials } from "../../src/auth/index.js";
import { SimpleRequestSchema, SimpleResponseSchema, type SimpleRequest } from "../tunnel/gen/interop/v1/test_pb.js";
import { TestTunnel, interopImpl, quietLog, startBridge, waitFor } from "../tunnel/helpers.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const UNARY = "/interop.v1.TestService/UnaryCall";

/** One unary call with `credentials`; resolves to the serving instance's id. */
function call(target: string, credentials: grpc.ChannelCredentials): Promise<string> {
  const client = new grpc.Client(target, credentials);
  return new Promise<string>((resolve, reject) => {
    client.makeUnaryRequest(
      UNARY,
      (m: SimpleRequest) => Buffer.from(toBinary(SimpleRequestSchema, m)),
      (b: Buffer) => fromBinary(SimpleResponseSchema, b),
      create(SimpleRequestSchema, { responseSize: 3 }),
      new grpc.Metadata(),
      { deadline: new Date(Date.now() + 20_000) },
      (err, res) => (err ? reject(err) : resolve(res!.instanceId)),
    );
  }).finally(() => client.close());
}

describe("TLS and token authentication", { timeout: 120_000 }, () => {
  let dir: string;
  const f = (name: string) => path.join(dir, name);

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-tls-"));
    execFileSync("bash", [path.join(here, "make-certs.sh"), dir]);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function tlsRouter(extra: { clientCa?: boolean; tokens?: string[] } = {}): Promise<{ router: Router; target: string; logs: string[] }> {
    const logs: string[] = [];
    const router = createRouter({
      services: [{ tunnel: TestTunnel }],
      logger: quietLog(logs),
      ...(extra.tokens ? { authorize: tokenAuthorizer({ tokens: extra.tokens }) } : {}),
    });
    const credentials = loadServerCredentials({ cert: f("server.pem"), key: f("server.key"), ...(extra.clientCa ? { clientCa: f("ca.pem") } : {}) });
    const { port } = await router.listen("127.0.0.1:0", credentials);
    // By name: TLS sends a server name, which must not be an IP address (RFC 6066).
    return { router, target: `localhost:${port}`, logs };
  }

  it("routes a TLS client's call to a bridge registered over TLS with a valid token", async () => {
    const { router, target } = await tlsRouter({ tokens: ["s3cret", "other"] });
    const tls = () => loadChannelCredentials({ ca: f("ca.pem") });
    const bridge = await startBridge(target, "tls-a", { credentials: tls(), credentialsHook: tokenCredentials("s3cret") });
    try {
      assert.equal(await call(target, tls()), "tls-a");
      assert.deepEqual(
        router.instances().map((i) => i.id),
        ["tls-a"],
      );
    } finally {
      await bridge.stop(100);
      await router.close(100);
    }
  });

  it("refuses a bridge with a wrong token: start() rejects with the reason and calls find no instance", async () => {
    const { router, target, logs } = await tlsRouter({ tokens: ["s3cret"] });
    const bridgeLogs: string[] = [];
    try {
      const refused = startBridge(target, "intruder", {
        credentials: loadChannelCredentials({ ca: f("ca.pem") }),
        credentialsHook: tokenCredentials("guess"),
        logger: quietLog(bridgeLogs),
      });
      await assert.rejects(refused, (e: Error) => {
        assert.match(e.message, /refused instance intruder of interop\.v1\.TestService: not authorized: the token is not valid for interop\.v1\.TestService/);
        assert.doesNotMatch(e.message, /s3cret|guess/);
        return true;
      });
      assert.ok(
        bridgeLogs.some((l) => /refused registration: not authorized/.test(l)),
        bridgeLogs.join("\n"),
      );
      assert.ok(
        logs.some((l) => /refused instance "intruder".*not authorized/.test(l)),
        logs.join("\n"),
      );
      assert.deepEqual(router.instances(), []);
      const err = (await call(target, loadChannelCredentials({ ca: f("ca.pem") })).catch((e: grpc.ServiceError) => e)) as grpc.ServiceError;
      assert.equal(err.code, grpc.status.UNAVAILABLE);
    } finally {
      await router.close(100);
    }
  });

  it("refuses a bridge that sends no token", async () => {
    const { router, target } = await tlsRouter({ tokens: ["s3cret"] });
    try {
      await assert.rejects(
        startBridge(target, "tokenless", { credentials: loadChannelCredentials({ ca: f("ca.pem") }) }),
        /not authorized: no token: the instance sent no credentials\["token"\]/,
      );
    } finally {
      await router.close(100);
    }
  });

  it("fails a plaintext client and never registers a plaintext bridge on a TLS router", async () => {
    const { router, target } = await tlsRouter();
    // A registered instance, so a plaintext call that got through would succeed.
    const good = await startBridge(target, "tls-b", { credentials: loadChannelCredentials({ ca: f("ca.pem") }) });
    const bridgeLogs: string[] = [];
    const bridge = createBridge(TestTunnel, interopImpl("plain"), {
      router: target,
      instanceId: "plain",
      logger: quietLog(bridgeLogs),
      backoff: { initialMs: 50, maxMs: 500 },
    });
    void bridge.start().catch(() => {});
    try {
      assert.equal(await call(target, loadChannelCredentials({ ca: f("ca.pem") })), "tls-b");
      const err = (await call(target, grpc.credentials.createInsecure()).catch((e: grpc.ServiceError) => e)) as grpc.ServiceError;
      assert.equal(err.code, grpc.status.UNAVAILABLE);
      await waitFor("the plaintext bridge's stream to fail", () => bridgeLogs.some((l) => /UNAVAILABLE/.test(l)), 30_000);
      assert.deepEqual(
        router.instances().map((i) => i.id),
        ["tls-b"],
      );
    } finally {
      await bridge.stop(0);
      await good.stop(100);
      await router.close(100);
    }
  });

  it("with a client CA (mTLS) accepts only peers holding a certificate of that CA", async () => {
    const { router, target } = await tlsRouter({ clientCa: true });
    const mtls = (cert = "client") => loadChannelCredentials({ ca: f("ca.pem"), cert: f(`${cert}.pem`), key: f(`${cert}.key`) });
    const bridge = await startBridge(target, "mtls-a", { credentials: mtls() });
    try {
      assert.equal(await call(target, mtls()), "mtls-a");
      for (const creds of [loadChannelCredentials({ ca: f("ca.pem") }), mtls("other-client")]) {
        const err = (await call(target, creds).catch((e: grpc.ServiceError) => e)) as grpc.ServiceError;
        assert.equal(err.code, grpc.status.UNAVAILABLE, String(err));
      }
    } finally {
      await bridge.stop(100);
      await router.close(100);
    }
  });

  it("router.handler on the user's own http2.createSecureServer: mTLS, and authorize sees the instance's certificate", async () => {
    const seen: Array<string | undefined> = [];
    const router = createRouter({
      services: [{ tunnel: TestTunnel }],
      logger: quietLog(),
      authorize: (hello) => void seen.push(hello.certificate?.commonName),
    });
    const server = http2.createSecureServer({
      key: readFileSync(f("server.key")),
      cert: readFileSync(f("server.pem")),
      ca: readFileSync(f("ca.pem")),
      requestCert: true,
      rejectUnauthorized: true,
    });
    server.on("stream", router.handler);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const target = `localhost:${(server.address() as { port: number }).port}`;
    const mtls = loadChannelCredentials({ ca: f("ca.pem"), cert: f("client.pem"), key: f("client.key") });
    const bridge = await startBridge(target, "own-server", { credentials: mtls });
    try {
      assert.equal(await call(target, mtls), "own-server");
      assert.equal(seen.length, 1);
      assert.ok(seen[0], "the instance's certificate reached authorize");
    } finally {
      await bridge.stop(100);
      await router.close(100);
      server.close();
    }
  });

  it("names the file when TLS material is missing, not PEM or mismatched", () => {
    writeFileSync(f("junk.pem"), "not a certificate\n");
    assert.throws(() => loadServerCredentials({ cert: f("nope.pem"), key: f("server.key") }, { cert: "--tls-cert" }), {
      message: `--tls-cert ${f("nope.pem")}: cannot read it: no such file`,
    });
    assert.throws(() => loadServerCredentials({ cert: f("junk.pem"), key: f("server.key") }), {
      message: `certificate ${f("junk.pem")}: not a PEM certificate`,
    });
    assert.throws(() => loadServerCredentials({ cert: f("server.pem"), key: f("junk.pem") }), {
      message: `private key ${f("junk.pem")}: not a PEM private key (an encrypted key is not supported)`,
    });
    assert.throws(() => loadServerCredentials({ cert: f("server.pem"), key: f("client.key") }), {
      message: `private key ${f("client.key")} is not the key of certificate ${f("server.pem")}`,
    });
    assert.throws(() => loadChannelCredentials({ ca: f("ca.pem"), cert: f("client.pem") }), { message: "a client certificate needs its private key too" });
  });
});
