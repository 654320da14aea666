// The compiler wrapper: buf reads the module through stdin (so unsaved buffers count), errors
// become structured diagnostics, and buf.yaml v1, v2 or none all define the module.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { compileModule, formatDiagnostic } from "../src/index.js";
import { grpcrouterProtos, OPTIONS_PROTO, TUNNEL_PROTO } from "../src/grpcrouter-protos.js";
import { fixturesDir, repoRoot } from "./support/fixtures.js";

test("a compile error is a structured diagnostic with file, line, column and end", async () => {
  const root = path.join(fixturesDir, "broken", "proto");
  const c = await compileModule({ root });
  assert.equal(c.fileDescriptorSet, undefined);
  assert.deepEqual(c.diagnostics, [
    {
      file: "demo/v1/broken.proto",
      line: 6,
      column: 3,
      endLine: 6,
      endColumn: 10,
      severity: "error",
      message: "cannot find `Missing` in this scope",
      source: "buf",
    },
  ]);
  assert.equal(formatDiagnostic(c.diagnostics[0]!), "demo/v1/broken.proto:6:3: cannot find `Missing` in this scope");
});

test("an overlay (unsaved editor buffer) is compiled instead of the file on disk", async () => {
  const root = path.join(fixturesDir, "broken", "proto");
  const fixed = readFileSync(path.join(root, "demo/v1/broken.proto"), "utf8").replace("Missing missing = 1;", "string missing = 1;");
  const ok = await compileModule({ root, overlay: { "demo/v1/broken.proto": fixed } });
  assert.deepEqual(ok.diagnostics, []);
  assert.ok(ok.registry?.getService("demo.v1.Things"));
  // A new file that exists only in the editor joins the module; paths may be absolute.
  const extra = 'syntax = "proto3";\npackage demo.v1;\nmessage Extra { Nope n = 1; }\n';
  const bad = await compileModule({
    root,
    overlay: new Map([
      [path.join(root, "demo/v1/broken.proto"), fixed],
      [path.join(root, "demo/v1/extra.proto"), extra],
    ]),
  });
  assert.deepEqual(bad.diagnostics.map(formatDiagnostic), ["demo/v1/extra.proto:3:17: cannot find `Nope` in this scope"]);
});

test("buf.yaml v2 with a module path: import paths are relative to the module, diagnostics to the root", async () => {
  const root = path.join(fixturesDir, "bufyaml-v2");
  const c = await compileModule({ root });
  assert.deepEqual(c.diagnostics, []);
  assert.deepEqual(c.files, ["inv/v1/inventory.proto"]);
  assert.equal(c.sourcePaths.get("inv/v1/inventory.proto"), "proto/inv/v1/inventory.proto");
  const broken = await compileModule({ root, overlay: { "proto/inv/v1/inventory.proto": 'syntax = "proto3";\npackage inv.v1;\nmessage M { X x = 1; }\n' } });
  assert.deepEqual(broken.diagnostics.map(formatDiagnostic), ["proto/inv/v1/inventory.proto:3:13: cannot find `X` in this scope"]);
});

test("buf.yaml v1, and no buf.yaml at all, make the folder the module; well-known types need no set-up", async () => {
  const v1 = await compileModule({ root: path.join(fixturesDir, "bufyaml-v1", "proto") });
  assert.deepEqual(v1.diagnostics, []);
  assert.deepEqual(v1.files, ["catalog/v1/catalog.proto"]);
  assert.ok(v1.registry?.getMessage("google.protobuf.Struct"));
  const none = await compileModule({ root: path.join(fixturesDir, "naming", "proto") });
  assert.deepEqual(none.diagnostics, []);
  assert.deepEqual(none.files, ["acme/common/v1/types.proto", "acme/shop/v1/cases.proto", "acme/shop/v1/shop.proto"]);
  assert.ok(none.registry?.getMessage("google.protobuf.Empty"));
});

test("proto2, proto3 and editions 2023 compile side by side", async () => {
  const c = await compileModule({ root: path.join(fixturesDir, "syntaxes", "proto") });
  assert.deepEqual(c.diagnostics, []);
  const syntaxes = Object.fromEntries(c.fileDescriptorSet!.file.filter((f) => c.files.includes(f.name)).map((f) => [f.name, f.syntax || "proto2"]));
  assert.deepEqual(syntaxes, { "legacy/v1/legacy.proto": "proto2", "modern/v1/modern.proto": "editions" });
});

test("a folder without .proto files is one clear diagnostic", async () => {
  const c = await compileModule({ root: path.join(repoRoot, "cli", "src") });
  assert.deepEqual(c.diagnostics.map(formatDiagnostic), [`grpcrouter: no .proto files found in ${path.join(repoRoot, "cli", "src")}`]);
});

test("an invalid buf.yaml is a diagnostic on buf.yaml", async () => {
  const root = path.join(fixturesDir, "naming", "proto");
  const c = await compileModule({ root, overlay: { "buf.yaml": "version: v9\n" } });
  assert.equal(c.diagnostics.length, 1);
  assert.equal(c.diagnostics[0]!.file, "buf.yaml");
  assert.match(c.diagnostics[0]!.message, /^invalid buf\.yaml: /);
});

test("the embedded copies of grpcrouter's protos equal proto/grpcrouter/v1 (else: node generator/scripts/embed-protos.mjs)", () => {
  // Exactly the two protos generated code depends on (admin.proto is the router's own API).
  assert.deepEqual(Object.keys(grpcrouterProtos).sort(), [OPTIONS_PROTO, TUNNEL_PROTO].sort());
  for (const [name, text] of Object.entries(grpcrouterProtos)) {
    assert.equal(text, readFileSync(path.join(repoRoot, "proto", name), "utf8"), name);
  }
});
