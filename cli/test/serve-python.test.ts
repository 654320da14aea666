// "Any language" for real: a gRPC C-core server in Python (Debian's python3-grpcio, no
// generated code) made routable by `grpcrouter bridge`, and a C-core client in Python
// calling it through `grpcrouter serve` — unary, bidi, and an error status, with headers.
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { cli, echoModuleDir, repoRoot, type CliProcess } from "./serve-helpers.js";

const PYTHON = "/usr/bin/python3";
const fixtures = path.join(repoRoot, "cli/test/fixtures");

describe("a Python gRPC server behind grpcrouter bridge", { timeout: 180_000 }, () => {
  let tmp: string;
  let serve: CliProcess;
  let bridge: CliProcess;
  let python: ChildProcess;

  before(async () => {
    const check = spawnSync(PYTHON, ["-c", "import grpc"], { encoding: "utf8" });
    assert.equal(check.status, 0, `python3-grpcio is missing (scripts/ensure-test-deps.sh installs it): ${check.stderr}`);
    tmp = echoModuleDir("grpcrouter-python-");
    python = spawn(PYTHON, [path.join(fixtures, "echo_server.py"), "py-1"], { stdio: ["ignore", "pipe", "pipe"] });
    const port = await new Promise<string>((resolve, reject) => {
      let out = "";
      python.stdout!.on("data", (b: Buffer) => {
        out += b.toString();
        const m = /listening (\d+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      python.stderr!.on("data", (b: Buffer) => (out += b.toString()));
      python.once("exit", (code) => reject(new Error(`the Python server exited (${code}): ${out}`)));
    });
    serve = cli(["serve", "--root", "proto", "--port", "0", "--no-dashboard", "--no-watch"], tmp);
    const router = (await serve.waitFor(/router listening on (\S+)/))[1]!;
    bridge = cli(["bridge", "--target", `127.0.0.1:${port}`, "--router", router, "--root", "proto", "--id", "py-sidecar"], tmp);
    await bridge.waitFor(/py-sidecar registered demo\.v1\.Echo/);
  });

  after(async () => {
    await bridge?.stop();
    await serve?.stop();
    python?.kill("SIGKILL");
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("answers a Python client through the router: unary with headers, bidi, and an error status", () => {
    const router = /router listening on (\S+)/.exec(serve.stdout)![1]!;
    const r = spawnSync(PYTHON, [path.join(fixtures, "echo_client.py"), router], { encoding: "utf8", timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.deepEqual(lines, ["say hi from python py-1 py-1", "chat a b c", "fail FAILED_PRECONDITION asked to fail in python"]);
  });
});
