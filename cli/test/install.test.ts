// What a team outside this repository gets: the packed tarballs of @grpcrouter/runtime and
// @grpcrouter/cli (built by their prepack scripts) installed with plain npm into a fresh
// project, then used as the README says: `npx grpcrouter generate`, a strict NodeNext tsc
// over the generated code and a small program, and that program run with plain node, its
// one unary call answered through the router by a bridged instance. No workspace links,
// no tsx, no development condition: only what npm ships.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { repoRoot } from "./run-cli.js";

interface Run {
  code: number | null;
  out: string;
}

/** The environment a user's shell would have: none of our test runner's loader flags, none
 *  of the npm variables `npm test` sets (npm_package_*, npm_config_workspace…), which would
 *  make a child npm act on this repository instead of the user's project. */
function userEnv(): NodeJS.ProcessEnv {
  const keep = /^npm_config_(registry|cache|userconfig|globalconfig|proxy|https_proxy|noproxy|strict_ssl|cafile)$/i;
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k === "NODE_OPTIONS") continue;
    if (/^npm_/i.test(k) && !keep.test(k)) continue;
    env[k] = v;
  }
  env.NO_COLOR = "1";
  return env;
}

/** Runs a command to its end (killed after `timeoutMs`), with stdout and stderr together. */
function run(cmd: string, args: string[], cwd: string, timeoutMs: number): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, env: userEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (b: Buffer) => (out += b.toString()));
    child.stderr.on("data", (b: Buffer) => (out += b.toString()));
    const timer = setTimeout(() => {
      out += `\n[killed after ${timeoutMs} ms]`;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("error", (e) => (out += `\n${e.message}`));
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

function ok(r: Run, what: string): void {
  assert.equal(r.code, 0, `${what} failed (exit ${r.code}):\n${r.out}`);
}

const MAIN_TS = `// A user's program: the router, an Echo instance bridged to it, and a client that calls
// the router for the original service.
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Echo } from "./gen/demo/v1/echo_pb.js";
import { createEchoBridge } from "./gen/demo/v1/echo_bridge.js";
import { createEchoRouter } from "./gen/demo/v1/echo_router.js";

const router = createEchoRouter();
const { port } = await router.listen("127.0.0.1:0");
const bridge = createEchoBridge(
  { say: (req) => ({ text: "echo: " + req.text, instanceId: "user-1" }) },
  { router: "127.0.0.1:" + port, instanceId: "user-1" },
);
await bridge.start();
const client = createClient(Echo, createGrpcTransport({ baseUrl: "http://127.0.0.1:" + port }));
const res = await client.say({ text: "hello from outside" });
console.log("answer: " + res.text + " by " + res.instanceId);
await bridge.stop(1000);
await router.close(1000);
`;

const TSCONFIG = {
  compilerOptions: {
    target: "ES2022",
    module: "NodeNext",
    moduleResolution: "NodeNext",
    strict: true,
    outDir: "dist",
    rootDir: ".",
    types: ["node"],
    skipLibCheck: false,
  },
  include: ["main.ts", "gen"],
};

test("the packed packages install from tarballs and work in a project of their own", { timeout: 900_000 }, async () => {
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  const npx = process.platform === "win32" ? "npx.cmd" : "npx";
  const work = mkdtempSync(path.join(tmpdir(), "grpcrouter-install-"));
  try {
    // The registry users install from must be reachable: an install test that cannot
    // install has not passed (CI's own `npm ci` needs it too).
    const ping = await run(npm, ["ping"], work, 60_000);
    assert.equal(ping.code, 0, `npm registry unreachable (npm ping: exit ${ping.code}): ${ping.out.trim().split("\n").pop()}`);

    // 1. npm pack, as a release would: prepack builds what ships (tsc -b, the esbuild bundle).
    const packs = path.join(work, "packs");
    mkdirSync(packs);
    const pack = await run(npm, ["pack", "--pack-destination", packs, "-w", "@grpcrouter/runtime", "-w", "@grpcrouter/cli"], repoRoot, 300_000);
    ok(pack, "npm pack");
    const tarballs = readdirSync(packs).filter((f) => f.endsWith(".tgz")).sort();
    assert.deepEqual(tarballs, ["grpcrouter-cli-0.1.0.tgz", "grpcrouter-runtime-0.1.0.tgz"]);

    // 2. A fresh project with the example's protos, installing the tarballs and the rest from the registry.
    const app = path.join(work, "app");
    cpSync(path.join(repoRoot, "examples", "echo", "proto"), path.join(app, "proto"), { recursive: true });
    writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "user-app", private: true, type: "module" }, null, 2));
    const install = await run(
      npm,
      [
        "install", "--no-audit", "--no-fund", "--prefer-offline",
        ...tarballs.map((f) => path.join(packs, f)),
        "@bufbuild/protobuf@^2.17.0", "@connectrpc/connect@^2.3.0", "@connectrpc/connect-node@^2.3.0",
        "typescript@~5.9.3", "@types/node@^20",
      ],
      app,
      600_000,
    );
    ok(install, "npm install");

    // 3. The README's command, through the installed bin.
    const gen = await run(npx, ["--no-install", "grpcrouter", "generate", "--root", "proto", "--out", "gen"], app, 120_000);
    ok(gen, "npx grpcrouter generate");
    assert.match(gen.out, /^grpcrouter: \d+ written, 0 unchanged, 0 removed in gen \(\d+ ms\)$/m);

    // 4. Strict NodeNext type-check of the generated code against the installed runtime's .d.ts, then emit.
    writeFileSync(path.join(app, "main.ts"), MAIN_TS);
    writeFileSync(path.join(app, "tsconfig.json"), JSON.stringify(TSCONFIG, null, 2));
    const tsc = await run(npx, ["--no-install", "tsc", "-p", "."], app, 180_000);
    ok(tsc, "tsc");

    // 5. Plain node: one unary call through the router, answered by the bridged instance.
    const main = await run(process.execPath, [path.join("dist", "main.js")], app, 60_000);
    ok(main, "node dist/main.js");
    assert.match(main.out, /^answer: echo: hello from outside by user-1$/m);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
