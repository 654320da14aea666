// What a team outside this repository does with our packages, as steps both the install test
// (cli/test/install.test.ts) and the release dry run (scripts/release.mjs) take: `npm pack` the
// workspaces (their prepack builds what ships), install the tarballs with plain npm into a
// fresh project beside the registry's packages, `npx grpcrouter generate`, a strict NodeNext
// tsc, and a small program run with plain node: a router, a bridged Echo instance and one call.
import { spawn } from "node:child_process";
import { cpSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The npm packages a release publishes, in dependency order. */
export const PUBLISHED_WORKSPACES = ["@grpcrouter/runtime", "@grpcrouter/generator", "@grpcrouter/cli"] as const;

export interface Run {
  code: number | null;
  out: string;
}

const npm = process.platform === "win32" ? "npm.cmd" : "npm";
const npx = process.platform === "win32" ? "npx.cmd" : "npx";

/** The environment a user's shell would have: none of our test runner's loader flags, none
 *  of the npm variables `npm test` sets (npm_package_*, npm_config_workspace…), which would
 *  make a child npm act on this repository instead of the user's project. */
export function userEnv(): NodeJS.ProcessEnv {
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
export function run(cmd: string, args: string[], cwd: string, timeoutMs: number): Promise<Run> {
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

/** Throws with the command's output unless it exited 0. */
export function ok(r: Run, what: string): Run {
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}):\n${r.out}`);
  return r;
}

/** Whether the registry users install from answers (`npm ping`); the reason when it does not. */
export async function registryUnreachable(cwd: string): Promise<string | undefined> {
  const ping = await run(npm, ["ping"], cwd, 60_000);
  return ping.code === 0 ? undefined : `npm registry unreachable (npm ping: exit ${ping.code}): ${ping.out.trim().split("\n").pop()}`;
}

/** `npm pack` of `workspaces` into `dest`, as a release would; returns the tarballs' file names, sorted. */
export async function packWorkspaces(dest: string, workspaces: readonly string[] = PUBLISHED_WORKSPACES): Promise<string[]> {
  mkdirSync(dest, { recursive: true });
  ok(await run(npm, ["pack", "--pack-destination", dest, ...workspaces.flatMap((w) => ["-w", w])], repoRoot, 300_000), "npm pack");
  return readdirSync(dest)
    .filter((f) => f.endsWith(".tgz"))
    .sort();
}

/**
 * A fresh project in `app` with the example's protos, the tarballs installed with plain npm and
 * the rest from the registry, then `npx grpcrouter generate`; returns generate's output.
 */
export async function installUserProject(app: string, tarballs: readonly string[]): Promise<string> {
  cpSync(path.join(repoRoot, "examples", "echo", "proto"), path.join(app, "proto"), { recursive: true });
  writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "user-app", private: true, type: "module" }, null, 2));
  ok(
    await run(
      npm,
      [
        "install",
        "--no-audit",
        "--no-fund",
        "--prefer-offline",
        ...tarballs,
        "@bufbuild/protobuf@^2.17.0",
        "@connectrpc/connect@^2.3.0",
        "@connectrpc/connect-node@^2.3.0",
        "typescript@~5.9.3",
        "@types/node@^20",
      ],
      app,
      600_000,
    ),
    "npm install",
  );
  return ok(await run(npx, ["--no-install", "grpcrouter", "generate", "--root", "proto", "--out", "gen"], app, 120_000), "npx grpcrouter generate").out;
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

/**
 * The README's program in the installed project: type-checked strictly against the installed
 * runtime's .d.ts, emitted, and run with plain node; returns its output.
 */
export async function runUserProgram(app: string): Promise<string> {
  writeFileSync(path.join(app, "main.ts"), MAIN_TS);
  writeFileSync(path.join(app, "tsconfig.json"), JSON.stringify(TSCONFIG, null, 2));
  ok(await run(npx, ["--no-install", "tsc", "-p", "."], app, 180_000), "tsc");
  return ok(await run(process.execPath, [path.join("dist", "main.js")], app, 60_000), "node dist/main.js").out;
}
