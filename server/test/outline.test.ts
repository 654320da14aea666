// The outline of messages with oneofs, over the protocol: only a oneof's own fields sit
// under it, and proto3 `optional` fields (synthetic oneofs) are plain fields.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import type { DocumentSymbol } from "vscode-languageserver-protocol";
import { pathToFileURL, stopAndRemove, TestClient } from "./lsp-client.js";

const SHAPES = `syntax = "proto3";

package shapes.v1;

message Shape {
  string id = 1;
  oneof kind {
    double radius = 2;
    double side = 3;
  }
  optional string label = 4;
}
`;

describe("outline of oneofs", () => {
  let ws: string;
  let client: TestClient;
  let shapes: string;

  before(async () => {
    ws = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-outline-"));
    shapes = path.join(ws, "shapes/v1/shapes.proto");
    mkdirSync(path.dirname(shapes), { recursive: true });
    writeFileSync(shapes, SHAPES);
    client = await TestClient.start({ folders: [ws], settings: { generateOnSave: false } });
    client.open(shapes);
    assert.deepEqual(await client.waitForCurrentDiagnostics(shapes), []);
  });

  after(() => stopAndRemove(client, ws));

  it("puts only the oneof's fields under it, and no synthetic oneof", async () => {
    const symbols = await client.request<DocumentSymbol[]>("textDocument/documentSymbol", { textDocument: { uri: pathToFileURL(shapes).href } });
    const shape = symbols.find((s) => s.name === "Shape");
    assert.ok(shape, JSON.stringify(symbols));
    const tree = shape.children?.map((c) => [c.name, c.children?.map((x) => x.name) ?? []]);
    assert.deepEqual(tree, [
      ["id", []],
      ["label", []],
      ["kind", ["radius", "side"]],
    ]);
  });
});

describe("outline asked the moment a file opens", () => {
  let ws: string;
  let client: TestClient;

  before(async () => {
    ws = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-outline-"));
    client = await TestClient.start({ folders: [ws], settings: { generateOnSave: false } });
  });

  after(() => stopAndRemove(client, ws));

  it("answers once the module has compiled, not with nothing (VS Code keeps the answer until the text changes)", async () => {
    const shapes = path.join(ws, "shapes/v1/shapes.proto");
    mkdirSync(path.dirname(shapes), { recursive: true });
    writeFileSync(shapes, SHAPES);
    // As VS Code does for the breadcrumbs: the request follows didOpen at once.
    client.open(shapes);
    const symbols = await client.request<DocumentSymbol[]>("textDocument/documentSymbol", { textDocument: { uri: pathToFileURL(shapes).href } });
    assert.deepEqual(
      symbols.map((s) => s.name),
      ["Shape"],
    );
  });
});
