// Editing buf.yaml and buf.lock while a .proto is open, as VS Code reports it: neither is a
// synced document (the client syncs .proto only), so the server learns of a save through
// workspace/didChangeWatchedFiles. What the user sees on the open file must follow the new
// config without touching the .proto, a broken config must be named where it is broken, and
// the generated code stays as it was until the module compiles again. Real buf, real LSP.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import type { Diagnostic, Location } from "vscode-languageserver-protocol";
import { copyFixture, msg, pathToFileURL, stopAndRemove, TestClient } from "./lsp-client.js";
import { find } from "./text-edits.js";

const SNAKE_ONLY = "version: v2\nlint:\n  use:\n    - FIELD_LOWER_SNAKE_CASE\n";

/** Every file below `dir` with its text, to show that nothing in it changed. */
function tree(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const rel of readdirSync(dir, { recursive: true, encoding: "utf8" })) {
    const p = path.join(dir, rel);
    if (statSync(p).isFile()) out.set(rel, readFileSync(p, "utf8"));
  }
  return out;
}

describe("editing buf.yaml and buf.lock while a .proto is open", () => {
  let ws: string;
  let client: TestClient;
  let orders: string;
  let text: string;
  let bufYaml: string;
  let bufLock: string;
  let gen: string;

  /** The user saved a config file (VS Code's watcher reports it; the server never has it open). */
  const saveOnDisk = (file: string, content: string | undefined, type: 1 | 2 | 3 = 2) => {
    if (content === undefined) rmSync(file, { force: true });
    else writeFileSync(file, content);
    void client.connection.sendNotification("workspace/didChangeWatchedFiles", { changes: [{ uri: pathToFileURL(file).href, type }] });
  };
  const codes = (d: Diagnostic[]) => d.map((x) => x.code);
  const lintOf = (d: Diagnostic[]) => d.filter((x) => x.source === "buf lint");
  const ofFile = (file: string) => client.diagnostics.get(pathToFileURL(file).href) ?? [];

  before(async () => {
    ws = copyFixture("editor-workspace");
    orders = path.join(ws, "proto/shop/v1/orders.proto");
    bufYaml = path.join(ws, "proto/buf.yaml");
    bufLock = path.join(ws, "proto/buf.lock");
    gen = path.join(ws, "proto/gen");
    // On disk, before the editor starts: a field buf's FIELD_LOWER_SNAKE_CASE finds.
    text = readFileSync(orders, "utf8").replace("string order_id = 2;", "string orderId = 2;");
    writeFileSync(orders, text);
    writeFileSync(bufYaml, SNAKE_ONLY);
    client = await TestClient.start({ folders: [ws], settings: { generateOnSave: true } });
    client.open(orders);
    const d = await client.waitForDiagnostics(orders, (x) => x.some((y) => y.code === "FIELD_LOWER_SNAKE_CASE"));
    assert.deepEqual(d[0]?.range.start, find(text, "orderId"));
    // The generated code a broken config must not cost.
    const from = client.notifications.length;
    client.save(orders);
    await client.waitFor("the first generation", () => client.generatedSince(from).find((g) => g.ok));
  });

  after(() => stopAndRemove(client, ws));

  it("follows rules swapped in buf.yaml without touching the .proto, and a save after it keeps the new ones", async () => {
    saveOnDisk(bufYaml, "version: v2\nlint:\n  use:\n    - COMMENT_FIELD\n");
    const swapped = await client.waitForDiagnostics(
      orders,
      (d) => d.some((x) => x.code === "COMMENT_FIELD") && !d.some((x) => x.code === "FIELD_LOWER_SNAKE_CASE"),
    );
    assert.ok(
      swapped.every((x) => x.source === "buf lint"),
      JSON.stringify(swapped),
    );
    // A save of the unchanged .proto: its generation lands, and what shows is still of the new rules.
    const from = client.notifications.length;
    const published = client.publishCount(orders);
    client.save(orders);
    await client.waitFor("the save's generation", () => client.generatedSince(from)[0]);
    await client.waitFor("a publish after the save", () => client.publishCount(orders) > published || undefined);
    const after = ofFile(orders);
    assert.ok(after.some((x) => x.code === "COMMENT_FIELD") && !after.some((x) => x.code === "FIELD_LOWER_SNAKE_CASE"), JSON.stringify(codes(after)));
    saveOnDisk(bufYaml, SNAKE_ONLY);
    await client.waitForDiagnostics(orders, (d) => codes(d).join() === "FIELD_LOWER_SNAKE_CASE");
  });

  it("drops the findings when buf.yaml's lint section goes, and brings them back with it", async () => {
    saveOnDisk(bufYaml, "version: v2\n");
    await client.waitForDiagnostics(orders, (d) => d.length === 0);
    const from = client.notifications.length;
    client.save(orders);
    await client.waitFor("the save's generation", () => client.generatedSince(from)[0]);
    await client.waitForCurrentDiagnostics(orders);
    assert.deepEqual(ofFile(orders), []);
    saveOnDisk(bufYaml, SNAKE_ONLY);
    await client.waitForDiagnostics(orders, (d) => codes(d).join() === "FIELD_LOWER_SNAKE_CASE");
  });

  it("names a buf.yaml that does not parse, on buf.yaml and on the open file, keeps the generated code and the index, and clears it once fixed", async () => {
    const generated = tree(gen);
    assert.ok(generated.size > 0);
    const broken = "version: v2\nlint:\n  use: [\n";
    saveOnDisk(bufYaml, broken);
    // The rules are unknown now: the old findings go, and the open file says why.
    const onOrders = await client.waitForDiagnostics(orders, (d) => d.some((x) => msg(x).includes("buf.yaml")) && lintOf(d).length === 0);
    assert.equal(onOrders.length, 1, JSON.stringify(onOrders));
    assert.match(msg(onOrders[0]!), /proto\/buf\.yaml/);
    const onConfig = await client.waitForDiagnostics(bufYaml, (d) => d.length > 0);
    assert.match(msg(onConfig[0]!), /buf\.yaml/);
    assert.equal(onConfig[0]!.severity, 1);
    // buf names the line (YAML's own count): the problem shows there, not on line 1.
    assert.equal(onConfig[0]!.range.start.line, 2, JSON.stringify(onConfig));
    // The last good index still answers: definition goes where it went.
    const def = await client.request<Location | null>("textDocument/definition", {
      textDocument: { uri: pathToFileURL(orders).href },
      position: find(text, "Customer customer = 1"),
    });
    assert.equal(def?.range.start.line, find(text, "message Customer").line);
    // A save while it is broken generates nothing and leaves the last good output as it was.
    const from = client.notifications.length;
    client.save(orders);
    const g = await client.waitFor("the save's generation", () => client.generatedSince(from)[0]);
    assert.equal(g.ok, false);
    assert.deepEqual(tree(gen), generated);
    // Fixed: the error goes from both files, and the findings of the rules are back.
    saveOnDisk(bufYaml, SNAKE_ONLY);
    await client.waitForDiagnostics(orders, (d) => codes(d).join() === "FIELD_LOWER_SNAKE_CASE");
    await client.waitForDiagnostics(bufYaml, (d) => d.length === 0);
  });

  it("names buf.yaml and the line of a rule buf does not know, and clears it once fixed", async () => {
    const unknown = "version: v2\nlint:\n  use:\n    - FIELD_LOWER_SNAKE_CASE\n    - NO_SUCH_RULE\n";
    saveOnDisk(bufYaml, unknown);
    const onOrders = await client.waitForDiagnostics(orders, (d) => d.some((x) => msg(x).includes("NO_SUCH_RULE")));
    assert.match(msg(onOrders.find((x) => msg(x).includes("NO_SUCH_RULE"))!), /proto\/buf\.yaml/);
    const onConfig = await client.waitForDiagnostics(bufYaml, (d) => d.length > 0);
    assert.match(msg(onConfig[0]!), /NO_SUCH_RULE/);
    assert.deepEqual(onConfig[0]!.range.start, find(unknown, "NO_SUCH_RULE"));
    saveOnDisk(bufYaml, SNAKE_ONLY);
    await client.waitForDiagnostics(orders, (d) => codes(d).join() === "FIELD_LOWER_SNAKE_CASE");
    await client.waitForDiagnostics(bufYaml, (d) => d.length === 0);
  });

  it("names a buf.lock that does not parse, on buf.lock and on the open file, and clears it when it goes", async () => {
    saveOnDisk(bufLock, "version: v2\ndeps: [\n", 1);
    const onOrders = await client.waitForDiagnostics(orders, (d) => d.some((x) => msg(x).includes("buf.lock")));
    assert.ok(
      onOrders.some((x) => /proto\/buf\.lock/.test(msg(x))),
      JSON.stringify(onOrders),
    );
    const onLock = await client.waitForDiagnostics(bufLock, (d) => d.length > 0);
    assert.match(msg(onLock[0]!), /buf\.lock/);
    saveOnDisk(bufLock, undefined, 3);
    await client.waitForDiagnostics(orders, (d) => codes(d).join() === "FIELD_LOWER_SNAKE_CASE");
    await client.waitForDiagnostics(bufLock, (d) => d.length === 0);
  });
});

describe("buf.yaml edits in an editor that watches no files for the server", () => {
  let ws: string;
  let client: TestClient;

  before(async () => {
    ws = copyFixture("editor-workspace");
    client = await TestClient.start({ folders: [ws], settings: { generateOnSave: false }, watchFiles: false });
  });

  after(() => stopAndRemove(client, ws));

  it("applies the new rules when the .proto is saved, unchanged", async () => {
    const orders = path.join(ws, "proto/shop/v1/orders.proto");
    const bufYaml = path.join(ws, "proto/buf.yaml");
    writeFileSync(orders, readFileSync(orders, "utf8").replace("string order_id = 2;", "string orderId = 2;"));
    writeFileSync(bufYaml, SNAKE_ONLY);
    client.open(orders);
    await client.waitForDiagnostics(orders, (d) => d.some((x) => x.code === "FIELD_LOWER_SNAKE_CASE"));
    assert.ok(!client.registrations.some((r) => r.method === "workspace/didChangeWatchedFiles"));
    // The editor says nothing of buf.yaml; the user saves the .proto to see its rules.
    writeFileSync(bufYaml, "version: v2\nlint:\n  use:\n    - COMMENT_FIELD\n");
    client.save(orders);
    await client.waitForDiagnostics(orders, (d) => d.some((x) => x.code === "COMMENT_FIELD") && !d.some((x) => x.code === "FIELD_LOWER_SNAKE_CASE"));
    writeFileSync(bufYaml, "version: v2\n");
    client.save(orders);
    await client.waitForDiagnostics(orders, (d) => d.length === 0);
  });
});
