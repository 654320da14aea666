// The token authorizer and the token files a router and a bridge read.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { parseTokenFile, readTokenFile, readTokenSecret, tokenAuthorizer, tokenFileAuthorizer } from "../../src/auth/index.js";
import type { HelloInfo } from "../../src/tunnel/index.js";

const hello = (service: string, credentials: Record<string, string>): HelloInfo => ({
  instanceId: "i",
  service,
  labels: {},
  credentials,
  peer: "ipv4:127.0.0.1:1",
});

test("one token or a list is good for every service; anything else is refused without echoing it", () => {
  const auth = tokenAuthorizer({ tokens: ["alpha", "beta"] });
  assert.equal(auth(hello("demo.v1.Echo", { token: "beta" })), undefined);
  assert.equal(auth(hello("other.v1.Svc", { token: "alpha" })), undefined);
  assert.equal(auth(hello("demo.v1.Echo", { token: "alph" })), "the token is not valid for demo.v1.Echo");
  assert.equal(auth(hello("demo.v1.Echo", { token: "alphabet" })), "the token is not valid for demo.v1.Echo");
  assert.equal(auth(hello("demo.v1.Echo", {})), 'no token: the instance sent no credentials["token"]');
  assert.equal(tokenAuthorizer({ tokens: "solo" })(hello("x.Y", { token: "solo" })), undefined);
});

test("per-service tokens admit only their service; '*' tokens admit all; a custom key is read", () => {
  const auth = tokenAuthorizer({ tokens: { "demo.v1.Echo": ["echo-t"], "*": ["admin-t"] }, key: "authorization" });
  assert.equal(auth(hello("demo.v1.Echo", { authorization: "echo-t" })), undefined);
  assert.equal(auth(hello("demo.v1.Echo", { authorization: "admin-t" })), undefined);
  assert.equal(auth(hello("billing.v1.Billing", { authorization: "admin-t" })), undefined);
  assert.equal(auth(hello("billing.v1.Billing", { authorization: "echo-t" })), "the token is not valid for billing.v1.Billing");
  assert.equal(auth(hello("demo.v1.Echo", { token: "echo-t" })), 'no token: the instance sent no credentials["authorization"]');
  const only = tokenAuthorizer({ tokens: { "demo.v1.Echo": ["echo-t"] } });
  assert.equal(only(hello("billing.v1.Billing", { token: "echo-t" })), "no token is accepted for billing.v1.Billing");
});

test("no tokens or an empty token is a configuration error, not a router that refuses everyone", () => {
  assert.throws(() => tokenAuthorizer({ tokens: [] }), /no tokens given/);
  assert.throws(() => tokenAuthorizer({ tokens: { "demo.v1.Echo": [""] } }), /an empty token for demo\.v1\.Echo/);
});

test("token files: TOKEN or SERVICE TOKEN per line, comments, errors at file:line", () => {
  assert.deepEqual(parseTokenFile("# fleet\nshared-1\n\n  demo.v1.Echo   echo-1  \ndemo.v1.Echo echo-2\r\n", "t.txt"), {
    "*": ["shared-1"],
    "demo.v1.Echo": ["echo-1", "echo-2"],
  });
  assert.throws(() => parseTokenFile("ok\na b c\n", "t.txt"), { message: 't.txt:2: expected "TOKEN" or "SERVICE TOKEN", found 3 words' });
  assert.throws(() => parseTokenFile("demo/Echo tok\n", "t.txt"), { message: 't.txt:1: "demo/Echo" is not a service name (expected e.g. demo.v1.Echo)' });
  assert.throws(() => parseTokenFile("# only a comment\n", "t.txt"), { message: "t.txt: no tokens in the file; every instance would be refused" });
});

test("reading token files names the file that is missing or malformed", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-tokens-"));
  try {
    const missing = path.join(dir, "missing.txt");
    assert.throws(() => readTokenFile(missing), { message: `cannot read the token file ${missing}: no such file` });
    assert.throws(() => readTokenSecret(dir), { message: `cannot read the token file ${dir}: it is a directory` });
    const secret = path.join(dir, "secret");
    writeFileSync(secret, "  tok-123\n");
    assert.equal(readTokenSecret(secret), "tok-123");
    writeFileSync(secret, "\n");
    assert.throws(() => readTokenSecret(secret), { message: `${secret}: the token file is empty` });
    writeFileSync(secret, "one\ntwo\n");
    assert.throws(() => readTokenSecret(secret), { message: `${secret}: expected one token on one line` });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a token file authorizer follows edits of the file and keeps the last good tokens on a bad edit", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-tokens-"));
  try {
    const file = path.join(dir, "tokens.txt");
    writeFileSync(file, "old-token\n");
    const reloads: number[] = [];
    const errors: string[] = [];
    const auth = tokenFileAuthorizer(file, { onReload: (n) => reloads.push(n), onError: (e) => errors.push(e.message) });
    assert.equal(auth.tokenCount, 1);
    assert.equal(auth(hello("demo.v1.Echo", { token: "old-token" })), undefined);

    writeFileSync(file, "# rotated\nnew-token\ndemo.v1.Echo echo-only\n");
    assert.equal(auth(hello("demo.v1.Echo", { token: "old-token" })), "the token is not valid for demo.v1.Echo");
    assert.equal(auth(hello("demo.v1.Echo", { token: "new-token" })), undefined);
    assert.equal(auth(hello("demo.v1.Echo", { token: "echo-only" })), undefined);
    assert.deepEqual(reloads, [2]);

    writeFileSync(file, "new-token\na b c d\n");
    assert.equal(auth(hello("demo.v1.Echo", { token: "new-token" })), undefined);
    assert.equal(auth(hello("demo.v1.Echo", { token: "new-token" })), undefined);
    rmSync(file);
    assert.equal(auth(hello("demo.v1.Echo", { token: "new-token" })), undefined);
    assert.equal(auth(hello("demo.v1.Echo", { token: "new-token" })), undefined);
    assert.deepEqual(errors, [`${file}:2: expected "TOKEN" or "SERVICE TOKEN", found 4 words`, `cannot read the token file ${file}: no such file`]);
    assert.throws(() => tokenFileAuthorizer(file), { message: `cannot read the token file ${file}: no such file` });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("token files bind a token to instance ids and id prefixes (instances=)", () => {
  const tokens = parseTokenFile("edge-t instances=edge-*\ndemo.v1.Echo echo-t instances=echo-1,echo-2\n* any-t instances=x\n", "t.txt");
  assert.deepEqual(tokens, {
    "*": [
      { token: "edge-t", instances: ["edge-*"] },
      { token: "any-t", instances: ["x"] },
    ],
    "demo.v1.Echo": [{ token: "echo-t", instances: ["echo-1", "echo-2"] }],
  });
  const auth = tokenAuthorizer({ tokens });
  const as = (instanceId: string, token: string) => auth({ ...hello("demo.v1.Echo", { token }), instanceId });
  assert.equal(as("edge-eu-7", "edge-t"), undefined);
  assert.equal(as("echo-2", "echo-t"), undefined);
  assert.equal(as("echo-3", "echo-t"), 'the token may not register instance id "echo-3"');
  assert.equal(as("core-1", "edge-t"), 'the token may not register instance id "core-1"');
  assert.equal(as("edge-1", "nope"), "the token is not valid for demo.v1.Echo");
  assert.throws(() => parseTokenFile("tok instances=a,,b\n", "t.txt"), { message: "t.txt:1: instances=a,,b: an empty instance id" });
  assert.throws(() => parseTokenFile("tok instances=a*b\n", "t.txt"), { message: 't.txt:1: instances=a*b: "a*b" is not an id or a prefix ending in *' });
  assert.throws(() => tokenAuthorizer({ tokens: [{ token: "t", instances: [] }] }), /bound to no instance id/);
});
