// `grpcrouter serve` answers curl with JSON (the README's example, HTTP/1.1) and takes its
// CORS from `--config`, re-applied when the file changes: real processes (serve, a plain
// Echo server behind `grpcrouter bridge`) and Debian's curl.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { renameSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { cli, echoModuleDir, echoSchemas, routerAddress, startPlainEcho, type CliProcess } from "./serve-helpers.js";

const run = promisify(execFile);

async function curl(...args: string[]): Promise<{ status: number; headers: string; body: string }> {
  const { stdout } = await run("curl", ["-sS", "--http1.1", "-D", "-", ...args], { timeout: 30_000 });
  const split = stdout.indexOf("\r\n\r\n");
  const headers = stdout.slice(0, split);
  return { status: Number(/^HTTP\/1\.1 (\d+)/.exec(headers)![1]), headers: headers.toLowerCase(), body: stdout.slice(split + 4) };
}

describe("grpcrouter serve: JSON over HTTP/1.1 and CORS from --config", { timeout: 240_000 }, () => {
  let tmp: string;
  let serve: CliProcess;
  let bridge: CliProcess;
  let plain: Awaited<ReturnType<typeof startPlainEcho>>;
  let router: string;
  const configFile = () => path.join(tmp, "router.json");
  const writeConfig = (config: unknown) => {
    writeFileSync(`${configFile()}.tmp`, JSON.stringify(config));
    renameSync(`${configFile()}.tmp`, configFile());
  };

  before(async () => {
    tmp = echoModuleDir("grpcrouter-serve-web-");
    const schemas = await echoSchemas(path.join(tmp, "proto"));
    writeConfig({ cors: { allowedOrigins: ["http://app.test"] }, services: {} });
    serve = cli(["serve", "--root", "proto", "--port", "0", "--no-dashboard", "--config", "router.json"], tmp);
    router = await routerAddress(serve);
    plain = await startPlainEcho(schemas, "plain-web");
    bridge = cli(["bridge", "--target", plain.address, "--router", router, "--root", "proto", "--id", "plain-web"], tmp);
    await bridge.waitFor(/plain-web registered demo\.v1\.Echo/, "the bridge to register");
  });

  after(async () => {
    await bridge?.stop();
    await serve?.stop();
    await plain?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("answers the README's curl with JSON", async () => {
    const r = await curl("-H", "content-type: application/json", "-d", '{"text":"hi"}', `http://${router}/demo.v1.Echo/Say`);
    assert.equal(r.status, 200, r.body);
    const body = JSON.parse(r.body) as { text: string; instanceId: string };
    assert.equal(body.instanceId, "plain-web");
    assert.match(body.text, /hi/);
  });

  it("allows the configured origin, and another one after the file changes", async () => {
    const preflight = (origin: string) =>
      curl(
        "-X",
        "OPTIONS",
        "-H",
        `origin: ${origin}`,
        "-H",
        "access-control-request-method: POST",
        "-H",
        "access-control-request-headers: content-type",
        `http://${router}/demo.v1.Echo/Say`,
      );
    assert.equal((await preflight("http://app.test")).status, 204);
    assert.equal((await preflight("http://other.test")).status, 403);
    writeConfig({ cors: { allowedOrigins: ["http://other.test"], maxAgeSeconds: 60 }, services: {} });
    await serve.waitFor(/config reloaded from router\.json: .*cors changed/, "the CORS reload");
    const now = await preflight("http://other.test");
    assert.equal(now.status, 204);
    assert.match(now.headers, /access-control-max-age: 60/);
    assert.equal((await preflight("http://app.test")).status, 403);
  });

  it("refuses a bad cors field at reload, naming it, and keeps the running CORS", async () => {
    writeConfig({ cors: { allowedOrigins: ["app.test/path"] }, services: {} });
    await serve.waitFor(/router\.json: cors\.allowedOrigins\[0\]: "app\.test\/path" is not an origin/, "the config error");
    const r = await curl("-X", "OPTIONS", "-H", "origin: http://other.test", "-H", "access-control-request-method: POST", `http://${router}/demo.v1.Echo/Say`);
    assert.equal(r.status, 204);
  });
});
