// Certificate-based authorization over real mTLS: the router's authorize hook sees the
// instance's client certificate (CN, alternative names, fingerprint) and certificateAuthorizer
// admits or refuses instances by it. Certificates come from make-certs.sh (openssl).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { createRouter, type HelloInfo, type Router } from "../../src/tunnel/index.js";
import {
  certificateAuthorizer,
  everyAuthorizer,
  loadChannelCredentials,
  loadServerCredentials,
  tokenAuthorizer,
  tokenCredentials,
  type Authorize,
} from "../../src/auth/index.js";
import { TestTunnel, quietLog, startBridge } from "../tunnel/helpers.js";

const here = path.dirname(fileURLToPath(import.meta.url));

describe("certificate identity in authorize (mTLS)", { timeout: 120_000 }, () => {
  let dir: string;
  const f = (name: string) => path.join(dir, name);
  const mtls = (cert: string) => loadChannelCredentials({ ca: f("ca.pem"), cert: f(`${cert}.pem`), key: f(`${cert}.key`) });

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-certs-"));
    execFileSync("bash", [path.join(here, "make-certs.sh"), dir]);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function router(authorize: Authorize, clientCa = true): Promise<{ router: Router; target: string; logs: string[] }> {
    const logs: string[] = [];
    const r = createRouter({ services: [{ tunnel: TestTunnel }], logger: quietLog(logs), authorize });
    const credentials = loadServerCredentials({ cert: f("server.pem"), key: f("server.key"), ...(clientCa ? { clientCa: f("ca.pem") } : {}) });
    const { port } = await r.listen("127.0.0.1:0", credentials);
    return { router: r, target: `localhost:${port}`, logs };
  }

  it("gives the hook the client certificate's CN, alternative names and fingerprint", async () => {
    const seen: HelloInfo[] = [];
    const { router: r, target } = await router((hello) => {
      seen.push(hello);
      return undefined;
    });
    const bridge = await startBridge(target, "cert-a", { credentials: mtls("client") });
    try {
      assert.equal(seen.length, 1);
      const cert = seen[0]!.certificate;
      assert.ok(cert, "the hook got a certificate");
      assert.equal(cert.commonName, "instance-a");
      assert.equal(cert.subject.CN, "instance-a");
      assert.equal(cert.issuer.CN, "grpcrouter test ca");
      assert.deepEqual(cert.subjectAltNames, ["DNS:instance-a.example", "URI:spiffe://example/instance-a"]);
      assert.equal(cert.fingerprint256, new X509Certificate(readFileSync(f("client.pem"))).fingerprint256);
    } finally {
      await bridge.stop(100);
      await r.close(100);
    }
  });

  it("gives no certificate on TLS without client certificates", async () => {
    const seen: HelloInfo[] = [];
    const { router: r, target } = await router((hello) => {
      seen.push(hello);
      return undefined;
    }, false);
    const bridge = await startBridge(target, "no-cert", { credentials: loadChannelCredentials({ ca: f("ca.pem") }) });
    try {
      assert.equal(seen.length, 1);
      assert.equal(seen[0]!.certificate, undefined);
    } finally {
      await bridge.stop(100);
      await r.close(100);
    }
  });

  it("certificateAuthorizer admits a certificate name for its service and refuses another certificate", async () => {
    const authorize = certificateAuthorizer({ names: { "instance-a.example": ["interop.v1.TestService"] }, bindInstanceId: true });
    const { router: r, target, logs } = await router(authorize);
    const good = await startBridge(target, "instance-a", { credentials: mtls("client") });
    try {
      assert.deepEqual(
        r.instances().map((i) => i.id),
        ["instance-a"],
      );
      await assert.rejects(
        startBridge(target, "instance-b", { credentials: mtls("client-b") }),
        /not authorized: certificate CN=instance-b may not register interop\.v1\.TestService/,
      );
      // The right certificate, but another instance's id.
      await assert.rejects(
        startBridge(target, "instance-z", { credentials: mtls("client") }),
        /not authorized: instance id "instance-z" is not a name of its certificate CN=instance-a/,
      );
      assert.ok(
        logs.some((l) => /refused instance "instance-b".*CN=instance-b/.test(l)),
        logs.join("\n"),
      );
      assert.deepEqual(
        r.instances().map((i) => i.id),
        ["instance-a"],
      );
    } finally {
      await good.stop(100);
      await r.close(100);
    }
  });

  it("everyAuthorizer needs both the certificate and the token", async () => {
    const authorize = everyAuthorizer(certificateAuthorizer({ names: { "instance-a": ["*"] } }), tokenAuthorizer({ tokens: ["s3cret"] }));
    const { router: r, target } = await router(authorize);
    try {
      await assert.rejects(startBridge(target, "a-no-token", { credentials: mtls("client") }), /not authorized: no token/);
      await assert.rejects(
        startBridge(target, "b-token", { credentials: mtls("client-b"), credentialsHook: tokenCredentials("s3cret") }),
        /certificate CN=instance-b may not register/,
      );
      const both = await startBridge(target, "a-token", { credentials: mtls("client"), credentialsHook: tokenCredentials("s3cret") });
      await both.stop(100);
    } finally {
      await r.close(100);
    }
  });

  it("certificates bind instance ids by name (exact or prefix), and a second certificate cannot take a registered id", async () => {
    const authorize = certificateAuthorizer({
      names: { "instance-a": ["*"], "instance-b": ["*"] },
      instances: { "instance-a": ["edge-*"] },
    });
    const { router: r, target } = await router(authorize);
    const a = await startBridge(target, "edge-1", { credentials: mtls("client") });
    try {
      await assert.rejects(startBridge(target, "core-1", { credentials: mtls("client") }), /certificate CN=instance-a may not register instance id "core-1"/);
      // instance-b has no binding (any id) but edge-1 is registered by instance-a: PERMISSION_DENIED.
      await assert.rejects(
        startBridge(target, "edge-1", { credentials: mtls("client-b") }),
        /instance id "edge-1" of interop\.v1\.TestService is registered by another principal/,
      );
      // The same certificate may add streams to its id.
      const again = await startBridge(target, "edge-1", { credentials: mtls("client") });
      assert.equal(r.instances()[0]!.streams, 2);
      await again.stop(100);
    } finally {
      await a.stop(100);
      await r.close(100);
    }
  });

  it("certificateAuthorizer refuses every instance when the router does not require certificates", () => {
    const authorize = certificateAuthorizer({ names: { "instance-a": ["*"] } });
    const hello: HelloInfo = { instanceId: "x", service: "s.v1.S", labels: {}, credentials: {}, peer: "ipv4:127.0.0.1:1" };
    assert.equal(authorize(hello), "no client certificate (the router must require one: mTLS)");
  });
});
