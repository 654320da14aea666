// The `grpcrouter.*` settings as a user sets them, through the bundled language server over
// stdio: where generated code goes (`out`), which folders are proto modules (`roots`), and
// `generateOnSave: false`.
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { generateRequest, modulesRequest } from "../src/protocol.js";
import { copyFixture, msg, pathToFileURL, removeDir, repoRoot, stopAndRemove, TestClient } from "./lsp-client.js";

describe("grpcrouter.out and generateOnSave: false", () => {
  let ws: string;
  let client: TestClient;
  let orders: string;

  before(async () => {
    ws = copyFixture("editor-workspace");
    orders = path.join(ws, "proto/shop/v1/orders.proto");
    client = await TestClient.start({ folders: [ws], settings: { out: "${workspaceFolder}/generated/ts", generateOnSave: false } });
    client.open(orders);
    assert.deepEqual(await client.waitForCurrentDiagnostics(orders), []);
  });

  after(() => stopAndRemove(client, ws));

  it("generateOnSave: false: a save generates nothing; Generate still does", async () => {
    const from = client.notifications.length;
    client.save(orders);
    // The proof that the save generated nothing: two explicit generations after it. Had the
    // save started one, its summary (done, or cancelled by the first Generate) would be
    // among those sent by the time the second Generate answers.
    for (let i = 0; i < 2; i++) {
      const [s] = await client.request(generateRequest, { uri: pathToFileURL(orders).href });
      assert.equal(s?.ok, true, s?.message);
    }
    assert.deepEqual(
      client.generatedSince(from).map((s) => s.trigger),
      ["command", "command"],
    );
  });

  it("grpcrouter.out: code goes to the configured folder (${workspaceFolder} expanded), not the default gen/", async () => {
    const [s] = await client.request(generateRequest, { uri: pathToFileURL(orders).href });
    assert.equal(s?.ok, true, s?.message);
    assert.equal(s.out, path.join(ws, "generated/ts"));
    assert.ok(existsSync(path.join(ws, "generated/ts/shop/v1/orders_router.proto")), "orders_router.proto is not in generated/ts");
    assert.ok(existsSync(path.join(ws, "generated/ts/shop/v1/orders_pb.ts")));
    assert.equal(existsSync(path.join(ws, "proto/gen")), false, "nothing is written to the default gen/");
  });

  it("grpcrouter.out relative: resolved against the module root", async () => {
    client.setSettings({ out: "../build/gen", generateOnSave: false });
    const [s] = await client.request(generateRequest, { uri: pathToFileURL(orders).href });
    assert.equal(s?.ok, true, s?.message);
    assert.equal(s.out, path.join(ws, "build/gen"));
    assert.ok(existsSync(path.join(ws, "build/gen/shop/v1/orders_router.proto")));
  });
});

describe("grpcrouter.roots", () => {
  let tmp: string;
  let api: string;
  let modern: string;

  before(() => {
    // A workspace whose protos sit in api/ with no buf.yaml: like buf, the server takes the
    // workspace folder as the module, where `import "legacy/v1/legacy.proto"` cannot resolve.
    tmp = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-roots-"));
    api = path.join(tmp, "api");
    cpSync(path.join(repoRoot, "test-fixtures/syntaxes/proto"), api, { recursive: true });
    modern = path.join(api, "modern/v1/modern.proto");
  });

  after(() => {
    if (tmp) removeDir(tmp);
  });

  it("without roots: the workspace folder is the module, and the import does not resolve", async () => {
    const client = await TestClient.start({ folders: [tmp], settings: { generateOnSave: false } });
    try {
      client.open(modern);
      const d = await client.waitForDiagnostics(modern, (x) => x.length > 0);
      assert.ok(
        d.some((x) => msg(x) === "imported file does not exist"),
        JSON.stringify(d.map(msg)),
      );
      const modules = await client.request(modulesRequest, {});
      assert.deepEqual(
        modules.map((m) => m.root),
        [tmp],
      );
    } finally {
      await client.stop();
    }
  });

  it('roots: ["api"]: api/ is the module, the import resolves, and generated code goes below it', async () => {
    const client = await TestClient.start({ folders: [tmp], settings: { roots: ["api"], generateOnSave: false } });
    try {
      client.open(modern);
      assert.deepEqual(await client.waitForCurrentDiagnostics(modern), []);
      const modules = await client.request(modulesRequest, {});
      assert.deepEqual(
        modules.map((m) => m.root),
        [api],
      );
      assert.deepEqual(modules[0]!.services.sort(), ["legacy.v1.Legacy", "modern.v1.Modern"]);
      const [s] = await client.request(generateRequest, { uri: pathToFileURL(modern).href });
      assert.equal(s?.ok, true, s?.message);
      assert.equal(s.out, path.join(api, "gen"));
    } finally {
      await client.stop();
    }
  });
});
