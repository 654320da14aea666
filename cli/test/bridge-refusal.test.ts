// `grpcrouter bridge` as a user meets it when the router's security changes under it:
// a token removed from the router's token file ends a running bridge (exit 1, the router's
// reason) on its next registration instead of a retry loop; a plaintext bridge dialling a
// TLS router says that the router speaks TLS. Real processes, certificates from
// runtime/test/auth/make-certs.sh.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { cli, echoProtoDir, echoSchemas, repoRoot, startPlainEcho, type CliProcess } from "./serve-helpers.js";

describe("grpcrouter bridge when the router refuses it later or speaks TLS", { timeout: 240_000 }, () => {
  let tmp: string;
  let target: Awaited<ReturnType<typeof startPlainEcho>>;
  const procs: CliProcess[] = [];
  const f = (name: string) => path.join(tmp, name);
  const run = (args: string[]) => {
    const p = cli(args, tmp);
    procs.push(p);
    return p;
  };

  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-cli-refusal-"));
    execFileSync("bash", [path.join(repoRoot, "runtime/test/auth/make-certs.sh"), tmp]);
    cpSync(echoProtoDir, f("proto"), { recursive: true });
    target = await startPlainEcho(await echoSchemas(f("proto")), "echo-target");
  });

  after(async () => {
    for (const p of procs) await p.stop();
    await target?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("exits 1 with the router's reason when its token was revoked and the router restarts", async () => {
    writeFileSync(f("tokens.txt"), "keep-token\nrevoked-token\n");
    const serveArgs = (port: string) => ["serve", "--root", "proto", "--port", port, "--no-dashboard", "--no-watch", "--token-file", "tokens.txt"];
    const first = run(serveArgs("0"));
    const port = (await first.waitFor(/router listening on \S+:(\d+)/, "the router address"))[1]!;
    const bridge = run([
      "bridge",
      "--root",
      "proto",
      "--router",
      `127.0.0.1:${port}`,
      "--token",
      "revoked-token",
      "--target",
      target.address,
      "--id",
      "revoked",
    ]);
    await bridge.waitFor(/revoked registered demo\.v1\.Echo/, "the bridge to register");

    writeFileSync(f("tokens.txt"), "keep-token\n");
    assert.equal(await first.stop(), 0, first.output);
    const second = run(serveArgs(port));
    await second.waitFor(/router listening on \S+:(\d+)/, "the restarted router");
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([bridge.exited, new Promise<"running">((r) => (timer = setTimeout(() => r("running"), 90_000)))]);
    clearTimeout(timer);
    assert.equal(code, 1, bridge.output);
    assert.match(
      bridge.stderr,
      new RegExp(
        `grpcrouter bridge: router 127\\.0\\.0\\.1:${port} refused instance revoked of demo\\.v1\\.Echo: not authorized: the token is not valid for demo\\.v1\\.Echo\\n`,
      ),
    );
    // Refused once, not again and again.
    await second.waitFor(/refused instance "revoked"/, "the router to log the refusal");
    assert.equal(second.output.match(/refused instance "revoked"/g)!.length, 1, second.output);
    await second.stop();
  });

  it("a plaintext bridge dialling a TLS router says that the router speaks TLS", async () => {
    const serve = run(["serve", "--root", "proto", "--port", "0", "--no-dashboard", "--no-watch", "--tls-cert", "server.pem", "--tls-key", "server.key"]);
    const port = (await serve.waitFor(/router listening on \S+:(\d+)/, "the router address"))[1]!;
    const bridge = run(["bridge", "--root", "proto", "--router", `localhost:${port}`, "--target", target.address, "--id", "plain"]);
    await bridge.waitFor(/the router speaks TLS/, "the hint");
    assert.match(
      bridge.stderr,
      /grpcrouter bridge: Register stream 0 to localhost:\d+ lost \(UNAVAILABLE: .*\); the router speaks TLS: dial it with TLS \(.*--router-tls, --router-ca\); reconnecting in \d+ ms\n/,
    );
    assert.doesNotMatch(bridge.stdout, /registered/);
    assert.equal(await bridge.stop(), 0);
    await serve.stop();
  });
});
