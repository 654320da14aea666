// Completion and signature help, asked of the bundled server over stdio at the places a user
// types: after qualified prefixes, in `map<`, inside `import "`, options, field numbers, enum
// bodies. Items that insert are applied and the module must compile.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import type { CompletionItem, SignatureHelp, TextEdit } from "vscode-languageserver-protocol";
import { msg, openEditorWorkspace, stopAndRemove, TestClient } from "./lsp-client.js";
import { applyEdits, find } from "./text-edits.js";

/** The buffer with `typed` (then `rest`) inserted after `anchor`, and the position right after `typed`. */
function typing(text: string, anchor: string, typed: string, rest = ""): { buffer: string; at: { line: number; character: number } } {
  const i = text.indexOf(anchor);
  assert.ok(i >= 0, `no ${anchor}`);
  const buffer = text.slice(0, i + anchor.length) + typed + rest + text.slice(i + anchor.length);
  return { buffer, at: find(buffer, anchor + typed, anchor.length + typed.length) };
}

describe("completion over stdio", () => {
  let ws: string;
  let client: TestClient;
  let orders: string;
  let text: string;
  let uri: string;

  before(async () => {
    ({ ws, client, orders, text, uri } = await openEditorWorkspace({
      // A third file no one imports yet: an import path to offer, a type to auto-import.
      prepare: (dir) =>
        writeFileSync(path.join(dir, "proto/shop/v1/address.proto"), 'syntax = "proto3";\npackage shop.v1;\nmessage Address { string city = 1; }\n'),
    }));
  });

  after(() => stopAndRemove(client, ws));

  async function complete(
    anchor: string,
    typed: string,
    rest = "",
  ): Promise<{ items: CompletionItem[]; buffer: string; at: { line: number; character: number } }> {
    const { buffer, at } = typing(text, anchor, typed, rest);
    client.change(orders, buffer);
    const items = await client.request<CompletionItem[]>("textDocument/completion", { textDocument: { uri }, position: at });
    return { items, buffer, at };
  }

  const labels = (items: CompletionItem[]) => items.map((i) => i.label);
  const edit = (i: CompletionItem | undefined) => i?.textEdit as TextEdit | undefined;

  async function acceptAndCompile(buffer: string, item: CompletionItem | undefined): Promise<string> {
    assert.ok(item?.textEdit, `no item to accept: ${JSON.stringify(item)}`);
    const done = applyEdits(buffer, [edit(item)!, ...(item.additionalTextEdits ?? [])]);
    client.change(orders, done);
    assert.deepEqual((await client.waitForCurrentDiagnostics(orders)).map(msg), []);
    return done;
  }

  it("after `shop.v1.` offers only what is under it, replacing the typed prefix", async () => {
    const { items, buffer, at } = await complete("uint32 imported = 1;\n", "  shop.v1.", " x = 2;\n");
    assert.ok(items.length > 0);
    for (const l of labels(items)) assert.ok(String(l).startsWith("shop.v1."), `${l} is not under shop.v1.`);
    for (const want of ["shop.v1.Money", "shop.v1.Order.Status", "shop.v1.Address"]) assert.ok(labels(items).includes(want), `missing ${want}`);
    const money = items.find((i) => i.label === "shop.v1.Money")!;
    assert.deepEqual(edit(money)!.range, { start: { line: at.line, character: 2 }, end: at });
    assert.match(await acceptAndCompile(buffer, money), /shop\.v1\.Money x = 2;/);
  });

  it("after `google.protobuf.` offers the well-known types, and accepting one imports it", async () => {
    const all = await complete("uint32 imported = 1;\n", "  google.protobuf.", " at = 2;\n");
    for (const l of labels(all.items)) assert.ok(String(l).startsWith("google.protobuf."), `${l} is not under google.protobuf.`);
    for (const want of ["google.protobuf.Duration", "google.protobuf.Empty", "google.protobuf.Struct"])
      assert.ok(labels(all.items).includes(want), `missing ${want}`);
    const { items, buffer } = await complete("uint32 imported = 1;\n", "  google.protobuf.Time", " at = 2;\n");
    const ts = items.find((i) => i.label === "google.protobuf.Timestamp");
    assert.deepEqual(
      ts?.additionalTextEdits?.map((e) => e.newText),
      ['import "google/protobuf/timestamp.proto";\n'],
    );
    const done = await acceptAndCompile(buffer, ts);
    assert.match(done, /google\.protobuf\.Timestamp at = 2;/);
  });

  it("offers a type of a file not imported yet, with its import", async () => {
    const { items, buffer } = await complete("uint32 imported = 1;\n", "  Addr", " shipping_to = 2;\n");
    const address = items.find((i) => i.label === "Address");
    assert.ok(address, JSON.stringify(labels(items)));
    assert.deepEqual(
      address.additionalTextEdits?.map((e) => e.newText),
      ['import "shop/v1/address.proto";\n'],
    );
    await acceptAndCompile(buffer, address);
  });

  it("offers only integral types, bool and string as map keys; any type as values", async () => {
    const keys = await complete("uint32 imported = 1;\n", "  map<");
    assert.deepEqual(labels(keys.items).sort(), [
      "bool",
      "fixed32",
      "fixed64",
      "int32",
      "int64",
      "sfixed32",
      "sfixed64",
      "sint32",
      "sint64",
      "string",
      "uint32",
      "uint64",
    ]);
    const values = await complete("uint32 imported = 1;\n", "  map<string, ");
    for (const want of ["Money", "Customer", "bytes", "double"]) assert.ok(labels(values.items).includes(want), `missing ${want}`);
  });

  it('completes import paths inside `import "` from the module and the well-known types', async () => {
    const { items, at } = await complete('import "shop/v1/money.proto";\n', 'import "sh');
    const ls = labels(items);
    assert.ok(ls.includes("shop/v1/address.proto"), JSON.stringify(ls));
    assert.ok(ls.includes("google/protobuf/timestamp.proto"));
    assert.ok(!ls.includes("shop/v1/orders.proto"), "not the file itself");
    assert.ok(!ls.includes("shop/v1/money.proto"), "not what it imports already");
    const e = edit(items.find((i) => i.label === "shop/v1/address.proto"))!;
    assert.deepEqual(e.range, { start: { line: at.line, character: 'import "'.length }, end: at });
    // Before the quote: the item brings its quotes and the `;`.
    const bare = await complete('import "shop/v1/money.proto";\n', "import ");
    assert.equal(edit(bare.items.find((i) => i.label === "shop/v1/address.proto"))?.newText, '"shop/v1/address.proto";');
  });

  it("completes standard and custom options, their values, and options in brackets", async () => {
    const file = await complete("package shop.v1;\n", "option ");
    for (const want of ["java_package", "go_package", "optimize_for"]) assert.ok(labels(file.items).includes(want), `missing ${want}`);
    assert.ok(!labels(file.items).includes("uninterpreted_option"));
    const optimize = await complete("package shop.v1;\n", "option optimize_for = ");
    assert.deepEqual(labels(optimize.items).sort(), ["CODE_SIZE", "LITE_RUNTIME", "SPEED"]);

    const service = await complete("service Orders {\n", "  option ");
    assert.ok(labels(service.items).includes("(grpcrouter.v1.service)"), JSON.stringify(labels(service.items)));
    assert.ok(labels(service.items).includes("deprecated"));

    const bracket = await complete("string order_id = 2", " [dep");
    for (const want of ["deprecated", "json_name", "packed"]) assert.ok(labels(bracket.items).includes(want), `missing ${want}`);
    assert.deepEqual(edit(bracket.items.find((i) => i.label === "deprecated"))!.range.start.character, bracket.at.character - "dep".length);
    const value = await complete("string order_id = 2", " [deprecated = ");
    assert.deepEqual(labels(value.items).sort(), ["false", "true"]);
  });

  it("offers the next free field number after `=`, past reserved numbers", async () => {
    const first = await complete("uint32 imported = 1;\n", "  string note = ");
    assert.deepEqual(labels(first.items), ["2"]);
    const reserved = await complete("  Status status = 4;\n", "  reserved 5 to 7;\n  string note =");
    assert.deepEqual(labels(reserved.items), ["8"]);
    await acceptAndCompile(reserved.buffer, reserved.items[0]);
  });

  it("offers enum values with the enum's prefix and the next number", async () => {
    const { items } = await complete("STATUS_SHIPPED = 2;\n", "    ");
    const next = items.find((i) => i.label === "STATUS_");
    assert.ok(next, JSON.stringify(labels(items)));
    assert.equal(edit(next)!.newText, "STATUS_${1:NAME} = 3;");
    assert.ok(!labels(items).includes("STATUS_UNSPECIFIED = 0;"), "the zero value exists already");
    const empty = await complete("  Status status = 4;\n", "  enum Kind {\n    \n  }\n");
    const at = find(empty.buffer, "enum Kind {\n    ", "enum Kind {\n    ".length);
    const kinds = await client.request<CompletionItem[]>("textDocument/completion", { textDocument: { uri }, position: at });
    assert.ok(labels(kinds).includes("KIND_UNSPECIFIED = 0;"), JSON.stringify(labels(kinds)));
  });

  it("still completes while the buffer does not compile", async () => {
    const broken = text.replace("string order_id = 2;", "strin order_id = 2;");
    const { buffer, at } = typing(broken, "uint32 imported = 1;\n", "  shop.v1.Mo");
    client.change(orders, buffer);
    assert.ok((await client.waitForCurrentDiagnostics(orders)).length > 0);
    const items = await client.request<CompletionItem[]>("textDocument/completion", { textDocument: { uri }, position: at });
    assert.ok(labels(items).includes("shop.v1.Money"));
  });

  it("shows the options a field takes inside its brackets, the one being written active", async () => {
    const { buffer, at } = typing(text, "string order_id = 2", " [deprecated = true, json_na");
    client.change(orders, buffer);
    const help = await client.request<SignatureHelp | null>("textDocument/signatureHelp", { textDocument: { uri }, position: at });
    assert.ok(help);
    const sig = help.signatures[0]!;
    assert.match(sig.label, /deprecated = bool/);
    const active = sig.parameters![help.activeParameter!]!.label as [number, number];
    assert.equal(sig.label.slice(active[0], active[1]), "json_name = string");

    const inOption = typing(text, 'routing_key: { field: "customer.id" }\n', "    bal");
    client.change(orders, inOption.buffer);
    const routing = await client.request<SignatureHelp | null>("textDocument/signatureHelp", { textDocument: { uri }, position: inOption.at });
    assert.ok(routing, "help inside the option's braces");
    assert.match(routing.signatures[0]!.label, /routing_key: .*balancer: /);
  });
});
