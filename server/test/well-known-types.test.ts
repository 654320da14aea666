// Go to definition on the well-known types: buf has their .proto built in, so the server
// prints them from their descriptors into read-only copies and answers with those.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { clone, toJson } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import { compileModule } from "@grpcrouter/generator";
import { modulesRequest } from "../src/protocol.js";
import type { Location, Range } from "vscode-languageserver-protocol";
import { printProto } from "../src/analysis/print-proto.js";
import { pathToFileURL, removeDir, stopAndRemove, TestClient } from "./lsp-client.js";
import { find } from "./text-edits.js";

const CLOCK = `syntax = "proto3";

package clock.v1;

import "google/protobuf/timestamp.proto";
import "google/protobuf/struct.proto";

// One tick of the clock.
message Tick {
  google.protobuf.Timestamp at = 1;
  google.protobuf.Value payload = 2;
}
`;

// Every well-known type buf ships, including proto2 (descriptor.proto) and editions files.
const WELL_KNOWN = [
  "any",
  "api",
  "compiler/plugin",
  "cpp_features",
  "descriptor",
  "duration",
  "empty",
  "field_mask",
  "go_features",
  "java_features",
  "source_context",
  "struct",
  "timestamp",
  "type",
  "wrappers",
].map((n) => `google/protobuf/${n}.proto`);

function textAt(text: string, r: Range): string {
  const lines = text.split("\n");
  if (r.start.line === r.end.line) return lines[r.start.line]!.slice(r.start.character, r.end.character);
  return [lines[r.start.line]!.slice(r.start.character), ...lines.slice(r.start.line + 1, r.end.line), lines[r.end.line]!.slice(0, r.end.character)].join("\n");
}

/** Descriptors without source info, as JSON, to compare what two compiles declare. */
const declared = (f: FileDescriptorProto) => {
  const c = clone(FileDescriptorProtoSchema, f);
  c.sourceCodeInfo = undefined;
  return toJson(FileDescriptorProtoSchema, c);
};

describe("well-known types over the protocol", () => {
  let ws: string;
  let client: TestClient;
  let clock: string;

  before(async () => {
    ws = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-wkt-"));
    clock = path.join(ws, "clock/v1/clock.proto");
    mkdirSync(path.dirname(clock), { recursive: true });
    writeFileSync(clock, CLOCK);
    client = await TestClient.start({ folders: [ws], settings: { generateOnSave: false } });
    client.open(clock);
    assert.deepEqual(await client.waitForCurrentDiagnostics(clock), []);
  });

  after(() => stopAndRemove(client, ws));

  const definitionAt = (position: { line: number; character: number }) =>
    client.request<Location | null>("textDocument/definition", { textDocument: { uri: pathToFileURL(clock).href }, position });

  it("goes from a field's type to the declaration in a read-only copy with its comments", async () => {
    const onType = find(CLOCK, "Timestamp at");
    const loc = await definitionAt({ line: onType.line, character: onType.character + 3 });
    assert.ok(loc, "no definition for google.protobuf.Timestamp");
    const file = fileURLToPath(loc.uri);
    assert.ok(existsSync(file), `${file} does not exist`);
    assert.match(file, /buf-[\w.+-]+[\\/]google[\\/]protobuf[\\/]timestamp\.proto$/);
    assert.equal(statSync(file).mode & 0o222, 0, "the copy is writable");
    const text = readFileSync(file, "utf8");
    assert.match(textAt(text, loc.range), /message Timestamp/);
    // The doc comment sits right above the declaration, as in the original.
    const above = text.split("\n").slice(0, loc.range.start.line);
    const doc = above.slice(above.findLastIndex((l) => !l.startsWith("//")) + 1).join("\n");
    assert.match(doc, /^\/\/ A Timestamp represents a point in time/);

    const onValue = find(CLOCK, "Value payload");
    const value = await definitionAt(onValue);
    assert.ok(value);
    assert.match(fileURLToPath(value.uri), /struct\.proto$/);
    assert.match(textAt(readFileSync(fileURLToPath(value.uri), "utf8"), value.range), /message Value/);

    // Asked again: the same copy, not rewritten.
    const mtime = statSync(file).mtimeMs;
    const again = await definitionAt({ line: onType.line, character: onType.character + 3 });
    assert.deepEqual(again, loc);
    assert.equal(statSync(file).mtimeMs, mtime);
  });

  it("goes from the import to the file's first declaration", async () => {
    const onImport = find(CLOCK, '"google/protobuf/timestamp.proto"');
    const loc = await definitionAt({ line: onImport.line, character: onImport.character + 10 });
    assert.ok(loc, "no definition for the import");
    const file = fileURLToPath(loc.uri);
    assert.ok(existsSync(file));
    assert.match(textAt(readFileSync(file, "utf8"), loc.range), /message Timestamp/);
  });

  it("treats an opened copy as no module of the workspace", async () => {
    const onType = find(CLOCK, "Timestamp at");
    const loc = await definitionAt({ line: onType.line, character: onType.character + 3 });
    assert.ok(loc);
    client.open(fileURLToPath(loc.uri));
    assert.deepEqual(await client.request(modulesRequest, { uri: loc.uri }), []);
  });
});

describe("printing descriptors as .proto", () => {
  let tmp: string;
  before(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-print-"));
  });
  after(() => removeDir(tmp));

  it("prints every well-known type as text buf compiles back to the same declarations", async () => {
    const src = path.join(tmp, "src");
    mkdirSync(src);
    writeFileSync(path.join(src, "all.proto"), `syntax = "proto3";\npackage all;\n${WELL_KNOWN.map((f) => `import "${f}";\n`).join("")}`);
    const original = await compileModule({ root: src });
    assert.deepEqual(original.diagnostics, []);
    const wkt = original.fileDescriptorSet!.file.filter((f) => WELL_KNOWN.includes(f.name));
    assert.deepEqual(wkt.map((f) => f.name).sort(), [...WELL_KNOWN].sort());

    const printedRoot = path.join(tmp, "printed");
    for (const f of wkt) {
      const p = printProto(f);
      assert.equal(printProto(f).text, p.text, `${f.name} prints differently twice`);
      // Each recorded range holds its declaration's keyword and name.
      const lines = p.text.split("\n");
      for (const m of f.messageType) assert.equal(textAt(p.text, p.names.get(`${f.package}.${m.name}`)!), `message ${m.name}`, f.name);
      for (const e of f.enumType) assert.equal(textAt(p.text, p.names.get(`${f.package}.${e.name}`)!), `enum ${e.name}`, f.name);
      assert.ok(lines.length > 1);
      const out = path.join(printedRoot, f.name);
      mkdirSync(path.dirname(out), { recursive: true });
      writeFileSync(out, p.text);
    }
    const again = await compileModule({ root: printedRoot });
    assert.deepEqual(again.diagnostics, [], "the printed files do not compile");
    for (const f of wkt) {
      const back = again.fileDescriptorSet!.file.find((x) => x.name === f.name);
      assert.ok(back, `${f.name} missing from the recompile`);
      assert.deepEqual(declared(back), declared(f), `${f.name} declares something else once printed`);
    }
  });
});
