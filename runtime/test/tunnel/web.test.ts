// Browsers and curl call a bridged service through the router: a real chromium page using
// @connectrpc/connect-web (gRPC-Web and Connect transports) and Debian's curl with JSON over
// HTTP/1.1. The router's one port also keeps serving native gRPC.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { create } from "@bufbuild/protobuf";
import * as esbuild from "esbuild";
import { chromium, type Browser, type Page } from "playwright-core";
import type { Bridge, Router } from "../../src/tunnel/index.js";
import { EmptySchema } from "./gen/interop/v1/test_pb.js";
import { ECHO_INITIAL, TestClient, methodOf, startBridge, startRouter } from "./helpers.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const run = promisify(execFile);

let router: Router;
let bridge: Bridge;
let base: string;
let allowedPage: http.Server;
let otherPage: http.Server;
let browser: Browser;
let page: Page;
let refusedPage: Page;

async function servePage(script: string): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.url === "/app.js") {
      res.writeHead(200, { "content-type": "text/javascript" });
      res.end(script);
      return;
    }
    res.writeHead(200, { "content-type": "text/html" });
    res.end(`<!doctype html><title>web</title><script src="/app.js"></script>`);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return server;
}

const originOf = (s: http.Server) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`;

before(async () => {
  const bundle = await esbuild.build({
    entryPoints: [path.join(here, "web/page.ts")],
    bundle: true,
    write: false,
    format: "iife",
    platform: "browser",
    target: "es2022",
  });
  const script = bundle.outputFiles[0]!.text;
  allowedPage = await servePage(script);
  otherPage = await servePage(script);
  const r = await startRouter({ cors: { allowedOrigins: [originOf(allowedPage)], exposedHeaders: [ECHO_INITIAL] } });
  router = r.router;
  base = `http://${r.target}`;
  bridge = await startBridge(r.target, "web-instance");
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
  page = await browser.newPage();
  await page.goto(originOf(allowedPage));
  refusedPage = await browser.newPage();
  await refusedPage.goto(originOf(otherPage));
});

after(async () => {
  await browser?.close();
  await bridge?.stop(100);
  await router?.close(100);
  allowedPage?.close();
  otherPage?.close();
});

type Result = Record<string, unknown>;
const call = (p: Page, op: string, kind: string): Promise<Result> =>
  p.evaluate(([op, kind, baseUrl]) => (globalThis as unknown as { ops: Record<string, (k: string, b: string) => Promise<Result>> }).ops[op]!(kind, baseUrl), [
    op,
    kind,
    base,
  ] as const);

for (const kind of ["grpc-web", "connect", "connect-json"]) {
  test(`${kind}: unary from the page, with metadata both ways`, async () => {
    const r = await call(page, "unary", kind);
    assert.deepEqual(r, { size: 7, instanceId: "web-instance", echoed: "from-the-page" });
  });

  test(`${kind}: server streaming`, async () => {
    assert.deepEqual(await call(page, "stream", kind), { sizes: [3, 5, 8, 0] });
  });

  test(`${kind}: a status after streamed messages`, async () => {
    const r = await call(page, "streamError", kind);
    assert.equal(r.code, "Aborted");
    assert.equal(r.message, "stream stopped");
    assert.deepEqual(r.sizes, [2]);
  });

  test(`${kind}: an error with details`, async () => {
    const r = await call(page, "errorWithDetails", kind);
    assert.equal(r.code, "NotFound");
    assert.equal(r.message, "details: no such thing ✓");
    assert.deepEqual(r.details, [{ code: 5, message: "details: no such thing ✓" }]);
  });

  test(`${kind}: a deadline`, async () => {
    const r = await call(page, "deadline", kind);
    assert.equal(r.code, "DeadlineExceeded");
  });

  test(`${kind}: client streaming is refused with the protocols that carry it`, async () => {
    // connect-web refuses client streaming before sending anything (fetch has no request streams).
    assert.equal((await call(page, "bidi", kind)).error, true);
    // Sent anyway (fetch), the router answers in the protocol's own form, readable through CORS.
    const r = await call(page, "clientStreamRaw", kind);
    assert.equal(r.status, kind === "grpc-web" ? "12" : "unimplemented");
    assert.match(String(r.message), /client-streaming method: .*native gRPC/);
  });

  test(`${kind}: a page of an origin the router does not allow is refused by the browser`, async () => {
    const r = await call(refusedPage, "tryUnary", kind);
    assert.equal(r.error, true);
    assert.equal(r.code, "Unknown"); // fetch failed: CORS
    assert.match(String(r.message), /fetch/i);
    // The same call from the allowed page goes through: the origin made the difference.
    assert.equal((await call(page, "tryUnary", kind)).size, 7);
  });
}

// ---- curl over HTTP/1.1 ----

async function curl(...args: string[]): Promise<{ status: number; headers: string; body: string }> {
  const { stdout } = await run("curl", ["-sS", "--http1.1", "-D", "-", ...args], { timeout: 30_000 });
  const split = stdout.indexOf("\r\n\r\n");
  const headers = stdout.slice(0, split);
  return { status: Number(/^HTTP\/1\.1 (\d+)/.exec(headers)![1]), headers: headers.toLowerCase(), body: stdout.slice(split + 4) };
}

test("curl: JSON unary over HTTP/1.1", async () => {
  const r = await curl(
    "-H",
    "content-type: application/json",
    "-H",
    `${ECHO_INITIAL}: curl`,
    "-d",
    '{"responseSize": 4, "payload": {"body": "AAEC"}}',
    `${base}${methodOf("UnaryCall")}`,
  );
  assert.equal(r.status, 200);
  assert.match(r.headers, /content-type: application\/json/);
  assert.match(r.headers, new RegExp(`${ECHO_INITIAL}: curl`));
  assert.deepEqual(JSON.parse(r.body), { payload: { body: "AAAAAA==" }, instanceId: "web-instance" });
});

test("curl: a JSON error has Connect's code and HTTP status, with details", async () => {
  const r = await curl(
    "-H",
    "content-type: application/json",
    "-d",
    '{"responseStatus": {"code": 7, "message": "details: go away"}}',
    `${base}${methodOf("UnaryCall")}`,
  );
  assert.equal(r.status, 403);
  const err = JSON.parse(r.body) as { code: string; message: string; details: Array<{ type: string; value: string }> };
  assert.equal(err.code, "permission_denied");
  assert.equal(err.message, "details: go away");
  assert.equal(err.details[0]!.type, "interop.v1.EchoStatus");
});

test("curl: JSON that is not the request message is INVALID_ARGUMENT naming the type", async () => {
  const r = await curl("-H", "content-type: application/json", "-d", '{"noSuchField": 1}', `${base}${methodOf("UnaryCall")}`);
  assert.equal(r.status, 400);
  const err = JSON.parse(r.body) as { code: string; message: string };
  assert.equal(err.code, "invalid_argument");
  assert.match(err.message, /interop\.v1\.SimpleRequest/);
});

test("curl: an unknown method is unimplemented (501)", async () => {
  const r = await curl("-H", "content-type: application/json", "-d", "{}", `${base}/interop.v1.TestService/NoSuchMethod`);
  assert.equal(r.status, 501);
  assert.equal((JSON.parse(r.body) as { code: string }).code, "unimplemented");
});

test("curl: client streaming over Connect names native gRPC", async () => {
  const r = await curl("-H", "content-type: application/connect+json", "--data-binary", "@/dev/null", `${base}${methodOf("StreamingInputCall")}`);
  assert.equal(r.status, 200);
  const end = JSON.parse(r.body.slice(5)) as { error: { code: string; message: string } };
  assert.equal(end.error.code, "unimplemented");
  assert.match(end.error.message, /client-streaming.*native gRPC/);
});

test("curl: a preflight from an allowed origin is answered by the router; another origin gets no CORS headers", async () => {
  const ok = await curl(
    "-X",
    "OPTIONS",
    "-H",
    `origin: ${originOf(allowedPage)}`,
    "-H",
    "access-control-request-method: POST",
    "-H",
    "access-control-request-headers: content-type,x-grpc-web",
    `${base}${methodOf("UnaryCall")}`,
  );
  assert.equal(ok.status, 204);
  assert.match(ok.headers, new RegExp(`access-control-allow-origin: ${originOf(allowedPage)}`));
  assert.match(ok.headers, /access-control-expose-headers: .*grpc-status/);
  const refused = await curl(
    "-X",
    "OPTIONS",
    "-H",
    `origin: ${originOf(otherPage)}`,
    "-H",
    "access-control-request-method: POST",
    `${base}${methodOf("UnaryCall")}`,
  );
  assert.equal(refused.status, 403);
  assert.doesNotMatch(refused.headers, /access-control-allow-origin/);
});

test("native gRPC still works on the same port", async () => {
  const client = new TestClient(base.slice("http://".length));
  try {
    const { res } = await client.unary(methodOf("EmptyCall"), EmptySchema, EmptySchema, create(EmptySchema));
    assert.deepEqual(res, create(EmptySchema));
  } finally {
    client.close();
  }
});
