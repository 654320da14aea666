// Code actions on imports, asked of the bundled server over stdio: each fix is applied to the
// buffer as an editor would, and the module must then compile clean.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import type { CodeAction, Diagnostic } from "vscode-languageserver-protocol";
import { msg, openEditorWorkspace, stopAndRemove, TestClient } from "./lsp-client.js";
import { applyEdits, find } from "./text-edits.js";

describe("import code actions over stdio", () => {
  let ws: string;
  let client: TestClient;
  let orders: string;
  let money: string;
  let text: string;
  let uri: string;

  before(async () => {
    ({ ws, client, orders, money, text, uri } = await openEditorWorkspace());
  });

  after(() => stopAndRemove(client, ws));

  async function actionsFor(buffer: string, needle: string, only?: string[]): Promise<{ actions: CodeAction[]; diagnostics: Diagnostic[] }> {
    client.change(orders, buffer);
    const all = await client.waitForCurrentDiagnostics(orders);
    const at = find(buffer, needle);
    const range = { start: at, end: { line: at.line, character: at.character + needle.length } };
    const diagnostics = all.filter((d) => d.range.start.line === at.line);
    const actions = await client.request<CodeAction[]>("textDocument/codeAction", {
      textDocument: { uri },
      range,
      context: { diagnostics, ...(only ? { only } : {}) },
    });
    return { actions, diagnostics };
  }

  async function applyAndCompile(buffer: string, action: CodeAction | undefined): Promise<string> {
    assert.ok(action?.edit?.changes?.[uri], `no edit for this file: ${JSON.stringify(action)}`);
    const fixed = applyEdits(buffer, action.edit.changes[uri]);
    client.change(orders, fixed);
    assert.deepEqual((await client.waitForCurrentDiagnostics(orders)).map(msg), []);
    return fixed;
  }

  it("adds the missing import of a type of the module", async () => {
    const broken = text.replace('import "shop/v1/money.proto";\n', "");
    const { actions, diagnostics } = await actionsFor(broken, "Money total");
    assert.ok(
      diagnostics.some((d) => msg(d).includes("Money")),
      "the compiler reports the unknown type",
    );
    const add = actions.find((a) => a.title === 'Add import "shop/v1/money.proto"');
    assert.ok(add, JSON.stringify(actions.map((a) => a.title)));
    assert.equal(add.kind, "quickfix");
    assert.equal(add.isPreferred, true);
    const fixed = await applyAndCompile(broken, add);
    assert.equal(fixed, text, "the import lands where it was, in sorted place");
  });

  it("adds the import of a well-known type, and imports and qualifies a short name", async () => {
    const qualified = text.replace("  string name = 2;\n", "  string name = 2;\n  google.protobuf.Timestamp since = 3;\n");
    const { actions } = await actionsFor(qualified, "google.protobuf.Timestamp since");
    const add = actions.find((a) => a.title === 'Add import "google/protobuf/timestamp.proto"');
    const fixed = await applyAndCompile(qualified, add);
    assert.match(fixed, /import "google\/protobuf\/timestamp\.proto";\nimport "grpcrouter\/v1\/options\.proto";/);

    const short = text.replace("  string name = 2;\n", "  string name = 2;\n  Duration waited = 3;\n");
    const r = await actionsFor(short, "Duration waited");
    const guess = r.actions.find((a) => a.title === 'Import "google/protobuf/duration.proto" and use google.protobuf.Duration');
    const fixedShort = await applyAndCompile(short, guess);
    assert.match(fixedShort, /google\.protobuf\.Duration waited = 3;/);
  });

  it("offers the fix while another file of the module is broken", async () => {
    client.open(money);
    client.change(money, readFileSync(money, "utf8").replace("int64 units = 2;", "int64 units = ;"));
    const broken = text.replace('import "shop/v1/money.proto";\n', "");
    const { actions } = await actionsFor(broken, "Money total");
    assert.ok(
      actions.some((a) => a.title === 'Add import "shop/v1/money.proto"'),
      JSON.stringify(actions.map((a) => a.title)),
    );
    client.change(money, readFileSync(money, "utf8"));
    client.change(orders, text);
    assert.deepEqual(await client.waitForCurrentDiagnostics(orders), []);
  });

  it("never offers an import that would be a cycle", async () => {
    const uriMoney = client.open(money);
    const moneyText = readFileSync(money, "utf8");
    // money.proto is imported by orders.proto: importing orders.proto back is a cycle.
    const withCustomer = moneyText.replace("int64 units = 2;", "int64 units = 2;\n  Customer payer = 3;");
    client.change(money, withCustomer);
    const diags = await client.waitForCurrentDiagnostics(money);
    const at = find(withCustomer, "Customer payer");
    const actions = await client.request<CodeAction[]>("textDocument/codeAction", {
      textDocument: { uri: uriMoney },
      range: { start: at, end: at },
      context: { diagnostics: diags.filter((d) => d.range.start.line === at.line) },
    });
    assert.deepEqual(
      actions.filter((a) => a.title.includes("orders.proto")),
      [],
    );
    client.change(money, moneyText);
    assert.deepEqual(await client.waitForCurrentDiagnostics(money), []);
  });

  it("removes an unused import, and all of them at once", async () => {
    const extra = text.replace('import "shop/v1/money.proto";\n', 'import "shop/v1/money.proto";\nimport "google/protobuf/duration.proto";\n');
    const { actions } = await actionsFor(extra, 'import "google/protobuf/duration.proto";');
    const remove = actions.find((a) => a.title === 'Remove unused import "google/protobuf/duration.proto"');
    assert.equal(await applyAndCompile(extra, remove), text);
    // The used imports are never offered for removal.
    const used = await actionsFor(text, 'import "shop/v1/money.proto";');
    assert.deepEqual(
      used.actions.filter((a) => a.title.startsWith("Remove")),
      [],
    );

    const two = extra.replace('import "shop/v1/money.proto";\n', 'import "shop/v1/money.proto";\nimport "google/protobuf/empty.proto";\n');
    const all = await actionsFor(two, "syntax", ["source.removeUnusedImports"]);
    assert.deepEqual(
      all.actions.map((a) => a.title),
      ["Remove 2 unused imports"],
    );
    assert.equal(await applyAndCompile(two, all.actions[0]), text);
  });

  it("organizes imports: sorted, once each, the unused dropped", async () => {
    const messy = text.replace(
      'import "grpcrouter/v1/options.proto";\nimport "shop/v1/money.proto";\n',
      'import "shop/v1/money.proto";\nimport "google/protobuf/empty.proto";\n\nimport "grpcrouter/v1/options.proto";\nimport "shop/v1/money.proto";\n',
    );
    const { actions } = await actionsFor(messy, "syntax", ["source.organizeImports"]);
    assert.deepEqual(
      actions.map((a) => a.title),
      ["Organize imports"],
    );
    assert.equal(await applyAndCompile(messy, actions[0]), text);
    // Already organized: nothing to offer.
    const none = await actionsFor(text, "syntax", ["source.organizeImports"]);
    assert.deepEqual(none.actions, []);
  });
});
