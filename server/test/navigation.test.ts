// References, highlights, rename, workspace symbols, folding, links and selection ranges,
// asked of the bundled server over stdio, on a module whose third file is never opened.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import type { DocumentHighlight, DocumentLink, FoldingRange, Location, SelectionRange, SymbolInformation, WorkspaceEdit } from "vscode-languageserver-protocol";
import { copyFixture, pathToFileURL, stopAndRemove, TestClient } from "./lsp-client.js";
import { applyEdits, find } from "./text-edits.js";

const CART = `syntax = "proto3";

package shop.v1;

import "google/protobuf/timestamp.proto";
import "shop/v1/money.proto";
import "shop/v1/orders.proto";

// A cart before it becomes an order.
message Cart {
  repeated shop.v1.Money items = 1;
  .shop.v1.Money total = 2;
  Order.Status last_status = 3;
  google.protobuf.Timestamp updated = 4;
  map<string, Money> by_sku = 5;
}
`;

describe("navigation and rename over stdio", () => {
  let ws: string;
  let client: TestClient;
  let orders: string;
  let money: string;
  let cart: string;
  let ordersText: string;
  let moneyText: string;
  const uriOf = (f: string) => pathToFileURL(f).href;

  before(async () => {
    ws = copyFixture("editor-workspace");
    orders = path.join(ws, "proto/shop/v1/orders.proto");
    money = path.join(ws, "proto/shop/v1/money.proto");
    cart = path.join(ws, "proto/shop/v1/cart.proto");
    writeFileSync(cart, CART);
    ordersText = readFileSync(orders, "utf8");
    moneyText = readFileSync(money, "utf8");
    client = await TestClient.start({ folders: [ws], settings: { generateOnSave: false } });
    client.open(orders);
    client.open(money);
    await client.waitForDiagnostics(orders, (d) => d.length === 0);
  });

  after(() => stopAndRemove(client, ws));

  it("finds the references of a type in every file, the unopened one included, however qualified", async () => {
    const locs = await client.request<Location[]>("textDocument/references", {
      textDocument: { uri: uriOf(orders) },
      position: find(ordersText, "Money total", 2),
      context: { includeDeclaration: true },
    });
    const got = locs.map((l) => `${path.basename(l.uri)}:${l.range.start.line}:${l.range.start.character}-${l.range.end.character}`).sort();
    const at = (file: string, text: string, needle: string, shift = 0) => {
      const p = find(text, needle, shift);
      return `${file}:${p.line}:${p.character}-${p.character + "Money".length}`;
    };
    assert.deepEqual(
      got,
      [
        at("cart.proto", CART, "shop.v1.Money items", "shop.v1.".length),
        at("cart.proto", CART, ".shop.v1.Money total", ".shop.v1.".length),
        at("cart.proto", CART, "Money> by_sku"),
        at("money.proto", moneyText, "Money {"),
        at("orders.proto", ordersText, "Money total"),
      ].sort(),
    );
    const withoutDecl = await client.request<Location[]>("textDocument/references", {
      textDocument: { uri: uriOf(orders) },
      position: find(ordersText, "Money total", 2),
      context: { includeDeclaration: false },
    });
    assert.equal(withoutDecl.length, 4);
    assert.ok(!withoutDecl.some((l) => l.uri === uriOf(money)));
  });

  it("highlights a name in its file: the declaration as a write, the uses as reads", async () => {
    const hs = await client.request<DocumentHighlight[]>("textDocument/documentHighlight", {
      textDocument: { uri: uriOf(orders) },
      position: find(ordersText, "message Customer", "message ".length),
    });
    const lines = hs.map((h) => [h.range.start.line, h.kind]).sort((a, b) => a[0]! - b[0]!);
    assert.deepEqual(lines, [
      [find(ordersText, "message Customer").line, 3],
      [find(ordersText, "Customer customer = 1").line, 2],
      [find(ordersText, "Customer customer = 2").line, 2],
    ]);
  });

  it("refuses to rename well-known types and names declared outside the workspace, with a reason", async () => {
    client.open(cart);
    const wkt = client.request("textDocument/prepareRename", { textDocument: { uri: uriOf(cart) }, position: find(CART, "Timestamp updated", 2) });
    await assert.rejects(wkt, /well-known type/);
    const option = client.request("textDocument/prepareRename", {
      textDocument: { uri: uriOf(orders) },
      position: find(ordersText, "grpcrouter.v1.service", 16),
    });
    await assert.rejects(option, /outside this workspace/);
    const keyword = await client.request("textDocument/prepareRename", {
      textDocument: { uri: uriOf(orders) },
      position: find(ordersText, "message Customer", 2),
    });
    assert.equal(keyword, null);
    // On `Order` of `Order.Status`: the part under the cursor is what is renamed.
    const part = await client.request<{ range: { start: { character: number }; end: { character: number } }; placeholder: string }>(
      "textDocument/prepareRename",
      {
        textDocument: { uri: uriOf(cart) },
        position: find(CART, "Order.Status", 1),
      },
    );
    assert.equal(part.placeholder, "Order");
    assert.equal(part.range.end.character - part.range.start.character, "Order".length);
    await assert.rejects(
      client.request("textDocument/rename", { textDocument: { uri: uriOf(orders) }, position: find(ordersText, "Money total", 1), newName: "9lives" }),
      /not a valid/,
    );
    await assert.rejects(
      client.request("textDocument/rename", { textDocument: { uri: uriOf(orders) }, position: find(ordersText, "Money total", 1), newName: "Customer" }),
      /already exists/,
    );
  });

  it("renames a type across the module, unopened files included, and the module still compiles", async () => {
    const edit = await client.request<WorkspaceEdit>("textDocument/rename", {
      textDocument: { uri: uriOf(money) },
      position: find(moneyText, "Money {", 1),
      newName: "Cash",
    });
    const changes = edit.changes ?? {};
    assert.deepEqual(
      Object.keys(changes)
        .map((u) => path.basename(u))
        .sort(),
      ["cart.proto", "money.proto", "orders.proto"],
    );
    const newCart = applyEdits(CART, changes[uriOf(cart)]!);
    assert.match(newCart, /repeated shop\.v1\.Cash items = 1;/);
    assert.match(newCart, /\.shop\.v1\.Cash total = 2;/);
    assert.match(newCart, /map<string, Cash> by_sku/);
    // Apply it as an editor does: open buffers changed, the other file written.
    const newOrders = applyEdits(ordersText, changes[uriOf(orders)]!);
    const newMoney = applyEdits(moneyText, changes[uriOf(money)]!);
    assert.match(newMoney, /message Cash \{/);
    void client.connection.sendNotification("textDocument/didClose", { textDocument: { uri: uriOf(cart) } });
    writeFileSync(cart, newCart);
    client.change(money, newMoney);
    client.change(orders, newOrders);
    await client.waitForCurrentDiagnostics(orders);
    assert.deepEqual(await client.waitForCurrentDiagnostics(orders), []);

    // A message whose nested enum is named through it elsewhere: `Order.Status` → `Purchase.Status`.
    const renamed = await client.request<WorkspaceEdit>("textDocument/rename", {
      textDocument: { uri: uriOf(orders) },
      position: find(newOrders, "message Order", 9),
      newName: "Purchase",
    });
    const cartAfter = applyEdits(newCart, renamed.changes![uriOf(cart)]!);
    assert.match(cartAfter, /Purchase\.Status last_status = 3;/);
    const ordersAfter = applyEdits(newOrders, renamed.changes![uriOf(orders)]!);
    assert.match(ordersAfter, /rpc Get\(GetOrderRequest\) returns \(Purchase\);/);
    assert.match(ordersAfter, /rpc Sync\(stream Purchase\) returns \(stream Purchase\)/);
    // Put everything back for the next tests.
    writeFileSync(cart, CART);
    client.change(money, moneyText);
    client.change(orders, ordersText);
    assert.deepEqual(await client.waitForCurrentDiagnostics(orders), []);
  });

  it("renames a field in grpcrouter routing-key paths too, and routing still validates", async () => {
    const at = find(ordersText, "string id = 1;\n  string name", "string ".length);
    const edit = await client.request<WorkspaceEdit>("textDocument/rename", { textDocument: { uri: uriOf(orders) }, position: at, newName: "ident" });
    const renamed = applyEdits(ordersText, edit.changes![uriOf(orders)]!);
    assert.match(renamed, /routing_key: \{ field: "customer\.ident" \}/);
    assert.match(renamed, /message Customer \{\n  string ident = 1;/);
    assert.match(renamed, /message Order \{\n  string id = 1;/, "another message's id is another field");
    client.change(orders, renamed);
    assert.deepEqual(await client.waitForCurrentDiagnostics(orders), []);
    client.change(orders, ordersText);
    assert.deepEqual(await client.waitForCurrentDiagnostics(orders), []);
  });

  it("answers references and rename while a file is broken, at the lines of the text as it is now", async () => {
    const broken = ordersText.replace("// Who placed an order.", "// Who placed an order.\n\n\nmessage Oops {\n  strin x = 1;\n}");
    client.change(orders, broken);
    const diags = await client.waitForCurrentDiagnostics(orders);
    assert.ok(diags.length > 0, "the broken buffer has errors");
    const locs = await client.request<Location[]>("textDocument/references", {
      textDocument: { uri: uriOf(orders) },
      position: find(broken, "Customer customer = 1"),
      context: { includeDeclaration: true },
    });
    const here = locs
      .filter((l) => l.uri === uriOf(orders))
      .map((l) => l.range.start.line)
      .sort((a, b) => a - b);
    assert.deepEqual(here, [find(broken, "message Customer").line, find(broken, "Customer customer = 1").line, find(broken, "Customer customer = 2").line]);
    const edit = await client.request<WorkspaceEdit>("textDocument/rename", {
      textDocument: { uri: uriOf(orders) },
      position: find(broken, "message Customer", 9),
      newName: "Buyer",
    });
    assert.match(applyEdits(broken, edit.changes![uriOf(orders)]!), /message Buyer \{[\s\S]*Buyer customer = 1;[\s\S]*Buyer customer = 2;/);
    client.change(orders, ordersText);
    assert.deepEqual(await client.waitForCurrentDiagnostics(orders), []);
  });

  it("finds workspace symbols by part of their name, in the module's own files only", async () => {
    const syms = await client.request<SymbolInformation[]>("workspace/symbol", { query: "cust" });
    const customer = syms.find((s) => s.name === "Customer");
    assert.ok(customer, JSON.stringify(syms.map((s) => s.name)));
    assert.equal(customer.location.uri, uriOf(orders));
    assert.equal(customer.location.range.start.line, find(ordersText, "message Customer").line);
    assert.equal(syms[0]!.name.toLowerCase().startsWith("cust"), true);
    const timestamps = await client.request<SymbolInformation[]>("workspace/symbol", { query: "Timestamp" });
    assert.deepEqual(timestamps, [], "well-known types are not the workspace's symbols");
  });

  it("folds blocks, comment runs and the imports", async () => {
    const ranges = await client.request<FoldingRange[]>("textDocument/foldingRange", { textDocument: { uri: uriOf(orders) } });
    const has = (start: number, end: number, kind?: string) => ranges.some((r) => r.startLine === start && r.endLine === end && r.kind === kind);
    const service = find(ordersText, "service Orders").line;
    const serviceEnd = ordersText.split("\n").findIndex((l, i) => i > service && l === "}");
    assert.ok(has(service, serviceEnd - 1), JSON.stringify(ranges));
    const status = find(ordersText, "enum Status").line;
    assert.ok(has(status, status + 3), JSON.stringify(ranges));
    const imports = find(ordersText, 'import "grpcrouter').line;
    assert.ok(has(imports, imports + 1, "imports"), JSON.stringify(ranges));
  });

  it("links each import path to its file", async () => {
    const links = await client.request<DocumentLink[]>("textDocument/documentLink", { textDocument: { uri: uriOf(orders) } });
    const toMoney = links.find((l) => l.target === uriOf(money));
    assert.ok(toMoney, JSON.stringify(links));
    assert.deepEqual(toMoney.range.start, find(ordersText, "shop/v1/money.proto"));
    const toOptions = links.find((l) => l.target?.endsWith("grpcrouter/v1/options.proto"));
    assert.ok(toOptions, "the options import links to a readable copy");
    assert.ok(readFileSync(new URL(toOptions.target!), "utf8").includes("extend google.protobuf.ServiceOptions"));
  });

  it("grows a selection from a name part to its statement, its block and outward", async () => {
    const [sel] = await client.request<SelectionRange[]>("textDocument/selectionRange", {
      textDocument: { uri: uriOf(orders) },
      positions: [find(ordersText, "Money total", 1)],
    });
    const texts: string[] = [];
    const lines = ordersText.split("\n");
    const slice = (r: SelectionRange["range"]) => {
      if (r.start.line === r.end.line) return lines[r.start.line]!.slice(r.start.character, r.end.character);
      return [lines[r.start.line]!.slice(r.start.character), ...lines.slice(r.start.line + 1, r.end.line), lines[r.end.line]!.slice(0, r.end.character)].join(
        "\n",
      );
    };
    for (let s: SelectionRange | undefined = sel; s; s = s.parent) texts.push(slice(s.range));
    assert.equal(texts[0], "Money");
    assert.equal(texts[1], "Money total = 3;");
    assert.ok(
      texts.some((t) => t.startsWith("message Order {") && t.endsWith("}")),
      texts.join("\n---\n"),
    );
    assert.equal(texts[texts.length - 1], ordersText.replace(/\n$/, "") + (ordersText.endsWith("\n") ? "\n" : ""));
  });
});

describe("a module that has never compiled", () => {
  let ws: string;
  let client: TestClient;
  let orders: string;

  before(async () => {
    ws = copyFixture("editor-workspace");
    orders = path.join(ws, "proto/shop/v1/orders.proto");
    client = await TestClient.start({ folders: [ws], settings: { generateOnSave: false } });
  });

  after(() => stopAndRemove(client, ws));

  it("still folds, selects, completes well-known types and offers their import", async () => {
    // Broken on disk before the server ever saw it: no compile has succeeded.
    const text = readFileSync(orders, "utf8").replace("string order_id = 2;", "google.protobuf.Timestamp at = 2;\n  strin order_id = 3;");
    writeFileSync(orders, text);
    const uri = client.open(orders, text);
    assert.ok((await client.waitForCurrentDiagnostics(orders)).length > 0);

    const folds = await client.request<FoldingRange[]>("textDocument/foldingRange", { textDocument: { uri } });
    assert.ok(folds.some((f) => f.startLine === find(text, "message Order").line));
    const [sel] = await client.request<SelectionRange[]>("textDocument/selectionRange", { textDocument: { uri }, positions: [find(text, "Money total", 1)] });
    assert.ok(sel?.parent, "a chain of selections");

    const at = find(text, "google.protobuf.Timestamp at");
    const actions = await client.request<{ title: string }[]>("textDocument/codeAction", {
      textDocument: { uri },
      range: { start: at, end: at },
      context: { diagnostics: [] },
    });
    assert.ok(
      actions.some((a) => a.title === 'Add import "google/protobuf/timestamp.proto"'),
      JSON.stringify(actions),
    );

    const typed = text.replace("google.protobuf.Timestamp at", "google.protobuf.Dur at");
    client.change(orders, typed);
    const items = await client.request<{ label: string }[]>("textDocument/completion", {
      textDocument: { uri },
      position: find(typed, "google.protobuf.Dur", "google.protobuf.Dur".length),
    });
    assert.ok(
      items.some((i) => i.label === "google.protobuf.Duration"),
      JSON.stringify(items.map((i) => i.label)),
    );
  });
});

describe("workspace symbols before any file is opened", () => {
  let ws: string;
  let client: TestClient;

  before(async () => {
    ws = copyFixture("editor-workspace");
    client = await TestClient.start({ folders: [ws], settings: { generateOnSave: false } });
  });

  after(() => stopAndRemove(client, ws));

  it("compiles the workspace's modules to answer Ctrl+T, with a bounded answer", async () => {
    // 800 messages: a query matching them all gets the best 500, not a flood.
    const many = ['syntax = "proto3";', "package shop.v1;", ...Array.from({ length: 800 }, (_, i) => `message Many${i} { string id = 1; }`)].join("\n");
    writeFileSync(path.join(ws, "proto/shop/v1/many.proto"), many);
    const syms = await client.request<SymbolInformation[]>("workspace/symbol", { query: "Money" });
    const money = syms.find((s) => s.name === "Money");
    assert.ok(money, JSON.stringify(syms));
    assert.equal(money.location.uri, pathToFileURL(path.join(ws, "proto/shop/v1/money.proto")).href);
    assert.equal(money.containerName, "shop.v1");
    const flood = await client.request<SymbolInformation[]>("workspace/symbol", { query: "Many" });
    assert.equal(flood.length, 500);
    assert.ok(flood.every((s) => s.name.startsWith("Many")));
  });
});
