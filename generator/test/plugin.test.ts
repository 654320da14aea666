// protoc-gen-grpcrouter as a real buf plugin (buf generate with a buf.gen.yaml), including
// `previous=DIR`, which keeps frame field numbers stable across runs like the CLI does.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { runBuf } from "../src/compiler/buf.js";
import { GENERATED_MARKER } from "../src/index.js";
import { parseParameter } from "../src/phases/phase1-router-proto.js";
import { fixturesDir, readTree, repoRoot, tempDir } from "./support/fixtures.js";

test("buf generate with protoc-gen-grpcrouter writes router protos, frame code and keeps numbers via previous=", async () => {
  const t = tempDir();
  try {
    const out = path.join(t.dir, "gen");
    const plugin = path.join(repoRoot, "generator", "src", "protoc-gen-grpcrouter.ts");
    const run = async (version: string) => {
      const template = path.join(t.dir, "buf.gen.yaml");
      writeFileSync(
        template,
        [
          "version: v2",
          "plugins:",
          `  - local: ["${process.execPath}", "--conditions=@grpcrouter/source", "--import", "tsx", "${plugin}"]`,
          `    out: ${out}`,
          `    opt: [previous=${out}]`,
          "",
        ].join("\n"),
      );
      // cwd = the repository, so that `--import tsx` resolves.
      const r = await runBuf(["generate", path.join(fixturesDir, "stability", version), "--template", template], { cwd: repoRoot });
      assert.equal(r.status, 0, r.stderr);
    };
    await run("v1");
    const files = readTree(out);
    assert.deepEqual([...files.keys()].sort(), [
      "grpcrouter/v1/tunnel.proto",
      "grpcrouter/v1/tunnel_pb.ts",
      "svc/v1/svc_bridge.ts",
      "svc/v1/svc_router.proto",
      "svc/v1/svc_router.ts",
      "svc/v1/svc_router_pb.ts",
    ]);
    for (const [p, text] of files) assert.ok(text.startsWith(GENERATED_MARKER), `${p} carries the marker`);
    await run("v2");
    const v2 = readFileSync(path.join(out, "svc/v1/svc_router.proto"), "utf8");
    assert.match(v2, /\.svc\.v1\.Req inserted = 19; \/\/ rpc Inserted/);
    assert.match(v2, /reserved 17; \/\/ rpc Beta \(removed\)/);
    // The same text the in-process generator produced for the same sequence.
    assert.equal(v2, readFileSync(path.join(repoRoot, "generator/test/goldens/stability-v2/svc/v1/svc_router.proto"), "utf8"));
  } finally {
    t.remove();
  }
});

test("plugin parameters: previous=DIR, tunnel_code=true|false; anything else is a clear error", () => {
  assert.deepEqual(parseParameter("previous=gen,tunnel_code=false,target=ts"), { previous: "gen", tunnelCode: false });
  assert.deepEqual(parseParameter(""), {});
  assert.throws(() => parseParameter("tunnel_code=yes"), /tunnel_code=yes: expected true or false/);
  assert.throws(() => parseParameter("prevous=gen"), /unknown option "prevous" \(known: previous=DIR, tunnel_code=true\|false\)/);
});
