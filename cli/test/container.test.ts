// The container image, without a container engine (none runs on these machines): the
// Dockerfile is parsed and linted (dockerfile-ast, dockerfile-utils: the parser and validator
// of VS Code's Docker support), its build step is run (the same self-contained CLI bundle with
// ui/ and bin/buf beside it), and its ENTRYPOINT + CMD, its HEALTHCHECK and the README's
// `bridge` command are run on that bundle as the image runs them: from the WORKDIR holding the
// module, with no node_modules and no GRPCROUTER_BUF. What this cannot test is said in the
// README ("Container image").
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { DockerfileParser, type Dockerfile, type JSONInstruction } from "dockerfile-ast";
import { validate } from "dockerfile-utils";
import { echoClient, echoProtoDir, echoSchemas, Running, startPlainEcho } from "./serve-helpers.js";
import { repoRoot } from "./run-cli.js";

const TIMEOUT = 240_000;

interface Image {
  workdir: string;
  user: string;
  entrypoint: string[];
  cmd: string[];
  healthcheck: string[];
}

/** What the final stage runs, as the container engine reads it. */
function imageOf(file: Dockerfile): Image {
  const froms = file.getFROMs();
  const finalStart = froms[froms.length - 1]!.getRange().start.line;
  const last = (keyword: string) =>
    file
      .getInstructions()
      .filter((i) => i.getKeyword() === keyword && i.getRange().start.line >= finalStart)
      .pop();
  const json = (keyword: string) => (last(keyword) as JSONInstruction | undefined)?.getJSONStrings().map((s) => s.getJSONValue()) ?? [];
  const health = last("HEALTHCHECK")?.getArgumentsContent() ?? "";
  return {
    workdir: last("WORKDIR")?.getArgumentsContent() ?? "/",
    user: last("USER")?.getArgumentsContent() ?? "root",
    entrypoint: json("ENTRYPOINT"),
    cmd: json("CMD"),
    healthcheck: JSON.parse(
      health
        .slice(health.indexOf("CMD") + 3)
        .replace(/\\\n/g, " ")
        .trim(),
    ) as string[],
  };
}

/** The image's commands as `docker run` and `docker stop` treat them: SIGTERM, then SIGKILL after 30 s. */
const container = (argv: string[], cwd: string, env: NodeJS.ProcessEnv) =>
  new Running(argv, { cwd, env, stopSignal: "SIGTERM", stopGraceMs: 30_000, waitMs: 90_000 });

describe("the container image's commands", { timeout: TIMEOUT }, () => {
  const dockerfile = readFileSync(path.join(repoRoot, "Dockerfile"), "utf8");
  const image = imageOf(DockerfileParser.parse(dockerfile));
  let tmp: string;
  let app: string;
  let moduleDir: string;
  let env: NodeJS.ProcessEnv;
  let serve: Running | undefined;
  let bridge: Running | undefined;
  let router = "";
  let plain: Awaited<ReturnType<typeof startPlainEcho>> | undefined;

  /** The image's paths mapped to this test's folders: /app → the bundle, WORKDIR → the module. */
  const onHost = (args: string[]) => args.map((a) => a.replace(/^\/app\//, `${app}/`));
  /** The image's fixed ports and all-interfaces host, made free ports on loopback here. */
  const onLoopback = (args: string[]) =>
    args.map((a, i) => (args[i - 1] === "--host" ? "127.0.0.1" : args[i - 1] === "--port" || args[i - 1] === "--metrics-port" ? "0" : a));
  const health = (extra: string[]) =>
    spawnSync(
      onHost(image.healthcheck)[0]!,
      [
        ...onHost(image.healthcheck)
          .slice(1)
          .map((a) => (a === "127.0.0.1:9090" ? router : a)),
        ...extra,
      ],
      {
        cwd: moduleDir,
        env,
        encoding: "utf8",
        timeout: 60_000,
      },
    );

  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-image-"));
    app = path.join(tmp, "app");
    moduleDir = path.join(tmp, "proto");
    cpSync(echoProtoDir, moduleDir, { recursive: true });
    // The build stage's command, into this test's /app.
    const run = dockerfile.match(/node (extension\/scripts\/build\.mjs) --standalone-cli \/out/);
    assert.ok(run, "the build stage runs build.mjs --standalone-cli /out");
    const built = spawnSync(process.execPath, [path.join(repoRoot, run[1]!), "--standalone-cli", app], { encoding: "utf8", timeout: 180_000 });
    assert.equal(built.status, 0, `${built.stdout}${built.stderr}`);
    // As in the image: no GRPCROUTER_BUF, no node_modules on the way up from the bundle.
    env = { PATH: process.env.PATH, HOME: tmp, NO_COLOR: "1" };
  });

  after(async () => {
    await bridge?.stop();
    await serve?.stop();
    await plain?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("is a two-stage build on node:20-slim whose final stage runs the CLI as a user that is not root", () => {
    const diagnostics = validate(dockerfile).map((d) => `${d.range.start.line + 1}: ${d.message}`);
    assert.deepEqual(diagnostics, []);
    const froms = DockerfileParser.parse(dockerfile)
      .getFROMs()
      .map((f) => `${f.getImageName()}:${f.getImageTag()}`);
    assert.deepEqual(froms, ["node:20-slim", "node:20-slim"]);
    assert.notEqual(image.user, "root");
    assert.notEqual(image.user, "0");
    assert.deepEqual(image.entrypoint, ["node", "/app/grpcrouter.js"]);
    assert.equal(image.cmd[0], "serve");
    assert.deepEqual(image.healthcheck.slice(0, 3), ["node", "/app/grpcrouter.js", "health"]);
    // npm ci needs every workspace's manifest: each is copied before it runs.
    const beforeCi = dockerfile.slice(0, dockerfile.indexOf("RUN npm ci"));
    const { workspaces } = JSON.parse(readFileSync(path.join(repoRoot, "package.json"), "utf8")) as { workspaces: string[] };
    for (const ws of workspaces) assert.ok(beforeCi.includes(`COPY ${ws}/package.json ${ws}/\n`), `the build stage copies ${ws}/package.json before npm ci`);
    // What the final stage copies is the bundle and what sits beside it: no node_modules.
    for (const f of ["grpcrouter.js", "ui/index.html", "bin/buf"]) assert.ok(existsSync(path.join(app, f)), `${f} is in /app`);
    assert.equal(existsSync(path.join(app, "node_modules")), false);
  });

  it("serves the mounted module with its default command, and its health check says SERVING", async () => {
    serve = container([...onHost(image.entrypoint), ...onLoopback(image.cmd)], moduleDir, env);
    router = (await serve.waitFor(/router listening on (\S+)/))[1]!;
    await serve.waitFor(/metrics at (\S+)/);
    const r = health([]);
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    assert.equal(r.stdout, `grpcrouter: ${router}: SERVING\n`);
    // A routed service has no instance yet: not healthy, and the exit code says so.
    const svc = health(["--service", "demo.v1.Echo"]);
    assert.equal(svc.status, 1);
    assert.equal(svc.stderr, `grpcrouter: demo.v1.Echo at ${router}: NOT_SERVING\n`);
  });

  it("runs the bridge command: a plain gRPC server becomes routable and its service healthy", async () => {
    const schemas = await echoSchemas(moduleDir);
    plain = await startPlainEcho(schemas, "in-a-pod");
    // README: docker run … grpcrouter bridge --root . --target … --router …
    bridge = container([...onHost(image.entrypoint), "bridge", "--root", ".", "--target", plain.address, "--router", router], moduleDir, env);
    const deadline = Date.now() + 90_000;
    let r = health(["--service", "demo.v1.Echo"]);
    while (r.status !== 0 && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 250));
      r = health(["--service", "demo.v1.Echo"]);
    }
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}\n${bridge.output}`);
    const { res } = await echoClient(router, schemas).say("through the image");
    assert.equal(res.text, "through the image");
    assert.equal(res.instanceId, "in-a-pod");
  });

  it("stops on SIGTERM (docker stop) with exit 0, and the health check then fails", async () => {
    assert.equal(await bridge!.stop(), 0, bridge!.output);
    assert.equal(await serve!.stop(), 0, serve!.output);
    const r = health(["--timeout", "2"]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`^grpcrouter: ${router.replace(/[.]/g, "\\.")}: (UNAVAILABLE|DEADLINE_EXCEEDED): `));
  });
});
