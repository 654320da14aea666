// Writes test-fixtures/compat/<version>/: an Echo router and bridge generated and built from
// this version's packed tarballs, as one self-contained file, so later releases can test
// that their routers and bridges still talk to this one (cli/test/compat.test.ts).
// Run after tagging each release (see test-fixtures/compat/README.md):
//   npm run release:compat-fixture
// It packs the workspaces, installs the tarballs with plain npm into a fresh project
// (cli/test/user-project.ts, the steps of the install test), generates the Echo module with
// that project's `grpcrouter`, and bundles a small program over the generated code with esbuild.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { installUserProject, packWorkspaces, registryUnreachable } from "../cli/test/user-project.ts";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

const program = (version) => `// The compat fixture of grpcrouter ${version}: an Echo router or an Echo bridge.
//   node echo.mjs router            listens on 127.0.0.1 (a free port), prints its address
//   node echo.mjs bridge HOST:PORT  registers instance "release-${version}" with a router
// SIGTERM drains and exits 0.
import { create } from "@bufbuild/protobuf";
import { CollectResponseSchema, CountResponseSchema, SayResponseSchema } from "./gen/demo/v1/echo_pb.js";
import { createEchoBridge } from "./gen/demo/v1/echo_bridge.js";
import { createEchoRouter } from "./gen/demo/v1/echo_router.js";

const instanceId = "release-${version}";
const [mode, router] = process.argv.slice(2);
const onTerm = (stop) => process.once("SIGTERM", () => void stop().then(() => process.exit(0)));
if (mode === "router") {
  const r = createEchoRouter();
  const { port } = await r.listen("127.0.0.1:0");
  console.log("router listening on 127.0.0.1:" + port);
  onTerm(() => r.close(2000));
} else if (mode === "bridge" && router) {
  const b = createEchoBridge(
    {
      say: (req) => create(SayResponseSchema, { text: req.text, instanceId }),
      async *count(req) {
        for (let index = 1; index <= req.count; index++) yield create(CountResponseSchema, { text: req.text, index });
      },
      async collect(reqs) {
        const texts = [];
        for await (const r of reqs) texts.push(r.text);
        return create(CollectResponseSchema, { text: texts.join(" "), count: texts.length });
      },
      async *chat(reqs) {
        for await (const r of reqs) yield create(SayResponseSchema, { text: r.text, instanceId });
      },
    },
    { router, instanceId },
  );
  await b.start();
  console.log("bridge registered with " + router);
  onTerm(() => b.stop(2000));
} else {
  console.error("usage: node echo.mjs router | bridge HOST:PORT");
  process.exit(2);
}
`;

const work = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-compat-"));
try {
  const unreachable = await registryUnreachable(work);
  if (unreachable) throw new Error(unreachable);
  const { version } = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8"));
  const packs = path.join(work, "packs");
  const tarballs = (await packWorkspaces(packs)).map((f) => path.join(packs, f));
  const app = path.join(work, "app");
  await installUserProject(app, tarballs);
  writeFileSync(path.join(app, "echo.ts"), program(version));
  const dest = path.join(root, "test-fixtures", "compat", version);
  rmSync(dest, { recursive: true, force: true });
  mkdirSync(dest, { recursive: true });
  await esbuild.build({
    entryPoints: [path.join(app, "echo.ts")],
    outfile: path.join(dest, "echo.mjs"),
    absWorkingDir: app,
    bundle: true,
    minify: true,
    platform: "node",
    format: "esm",
    target: "node20",
    legalComments: "none",
    banner: {
      js: `// grpcrouter ${version} compat fixture, built by scripts/release-compat-fixture.mjs from the packed tarballs. DO NOT EDIT.\nimport { createRequire as __cr } from "node:module"; const require = __cr(import.meta.url);`,
    },
    logLevel: "warning",
  });
  // The module it was generated from, and the generated router proto (its frame numbers).
  cpSync(path.join(app, "proto"), path.join(dest, "proto"), { recursive: true });
  cpSync(path.join(app, "gen", "demo", "v1", "echo_router.proto"), path.join(dest, "echo_router.proto"));
  console.log(`compat fixture: ${path.relative(root, dest)}/echo.mjs (${(statSync(path.join(dest, "echo.mjs")).size / 1024).toFixed(0)} KiB)`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
