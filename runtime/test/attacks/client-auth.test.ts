// Client authorization: per service and method, by bearer JWT verified against a JWKS (and
// by mTLS certificate names). A denied call is answered by the router and never reaches an
// instance; the rules can be swapped while the router runs.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { SignJWT, exportJWK, generateKeyPair } from "jose";
import { clientAuthorizer } from "../../src/auth/index.js";
import { SimpleRequestSchema, SimpleResponseSchema } from "../tunnel/gen/interop/v1/test_pb.js";
import { TestClient, methodOf, startBridge, startRouter, type ImplProbe } from "../tunnel/helpers.js";

const call = (client: TestClient, token?: string) => {
  const md = new grpc.Metadata();
  if (token) md.set("authorization", `Bearer ${token}`);
  return client.unary(methodOf("UnaryCall"), SimpleRequestSchema, SimpleResponseSchema, create(SimpleRequestSchema, { responseSize: 1 }), md).then(
    (r) => r.res.instanceId,
    (e: grpc.ServiceError) => `${grpc.status[e.code]}: ${e.details}`,
  );
};

test("bearer JWTs against a JWKS file: no token, a forged token, a wrong audience or scope are refused before any instance", { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-jwt-"));
  const { publicKey, privateKey } = await generateKeyPair("ES256");
  const forger = await generateKeyPair("ES256");
  const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "ES256" };
  const jwks = path.join(dir, "jwks.json");
  writeFileSync(jwks, JSON.stringify({ keys: [jwk] }));
  const sign = (claims: Record<string, unknown>, key = privateKey, aud = "grpcrouter") =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: "ES256", kid: "k1" })
      .setIssuer("https://issuer.example")
      .setAudience(aud)
      .setSubject("alice")
      .setExpirationTime("5m")
      .sign(key);
  const authorizeCall = clientAuthorizer({
    jwks: { file: jwks },
    issuer: "https://issuer.example",
    audience: "grpcrouter",
    services: {
      "interop.v1.TestService": [
        { methods: ["UnaryCall"], jwt: { scopes: ["echo:call"] } },
        { methods: ["EmptyCall"], jwt: {} },
      ],
    },
  });
  const { router, target } = await startRouter({ authorizeCall });
  const probe: ImplProbe = { aborted: [], produced: 0, started: [] };
  const bridge = await startBridge(target, "inst", {}, probe);
  const client = new TestClient(target);
  try {
    assert.match(await call(client), /^UNAUTHENTICATED: .*needs a client certificate or a bearer token/);
    assert.match(await call(client, await sign({ scope: "echo:call" }, forger.privateKey)), /^UNAUTHENTICATED: .*not valid/);
    assert.match(await call(client, await sign({ scope: "echo:call" }, privateKey, "someone-else")), /^UNAUTHENTICATED: .*aud/);
    assert.match(await call(client, await sign({ scope: "other" })), /^PERMISSION_DENIED: .*UnaryCall is not allowed for this token \(sub "alice"\)/);
    assert.deepEqual(probe.started, [], "no denied call reached the instance");
    assert.equal(await call(client, await sign({ scope: "echo:call read" })), "inst");
    assert.deepEqual(probe.started, ["unaryCall"]);

    // Rules swapped at runtime (what serve --config does on an edit): UnaryCall by subject only.
    router.setAuthorizeCall(clientAuthorizer({ jwks: { file: jwks }, audience: "grpcrouter", services: { "*": [{ jwt: { subjects: ["bob"] } }] } }));
    assert.match(await call(client, await sign({ scope: "echo:call" })), /^PERMISSION_DENIED/);
    router.setAuthorizeCall(undefined);
    assert.equal(await call(client), "inst");
  } finally {
    client.close();
    await bridge.stop(0);
    await router.close(0);
    rmSync(dir, { recursive: true, force: true });
  }
});

test("certificate names admit a client (the names an mTLS router verified)", async () => {
  const authorize = clientAuthorizer({ services: { "demo.v1.Echo": [{ methods: ["Say"], certificates: ["client-a.example"] }] } });
  const cert = (cn: string, sans: string[] = []) => ({
    commonName: cn,
    subject: { CN: cn },
    issuer: {},
    subjectAltNames: sans,
    fingerprint256: "AA",
    serialNumber: "1",
    validTo: "",
  });
  assert.equal(
    await authorize({ service: "demo.v1.Echo", method: "Say", authorization: undefined, certificate: cert("a", ["DNS:client-a.example"]) }),
    undefined,
  );
  assert.deepEqual(await authorize({ service: "demo.v1.Echo", method: "Say", authorization: undefined, certificate: cert("b") }), {
    code: "PERMISSION_DENIED",
    message: "grpcrouter: /demo.v1.Echo/Say is not allowed for this client",
  });
  assert.equal(
    (await authorize({ service: "demo.v1.Echo", method: "Chat", authorization: undefined, certificate: cert("a", ["DNS:client-a.example"]) }))?.code,
    "PERMISSION_DENIED",
    "a method no rule covers is closed in a named service",
  );
  assert.equal(
    await authorize({ service: "other.v1.Open", method: "Any", authorization: undefined, certificate: undefined }),
    undefined,
    "services not named are open",
  );
  assert.throws(() => clientAuthorizer({ services: { "*": [{ jwt: {} }] } }), /jwt rules need clientAuth\.jwks/);
});
