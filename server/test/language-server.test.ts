// The bundled language server over stdio, driven the way an editor drives it.
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import type { CodeLens, CompletionItem, DocumentSymbol, Hover, Location } from "vscode-languageserver-protocol";
import { modulesRequest, routerStateNotification } from "../src/protocol.js";
import { copyFixture, hoverText, msg, openEditorWorkspace, pathToFileURL, removeDir, repoRoot, stopAndRemove, TestClient } from "./lsp-client.js";
import { find } from "./text-edits.js";

/** 0-based line and character of the first occurrence of `needle` (at `nth` occurrence). */

describe("language server over stdio", () => {
  let ws: string;
  let client: TestClient;
  let orders: string;
  let money: string;
  let text: string;

  before(async () => {
    // Generate on save (off here) is tested below; the other tests must not race with it.
    ({ ws, client, orders, money, text } = await openEditorWorkspace());
  });

  after(() => stopAndRemove(client, ws));

  it("publishes a typed compile error on its line, and clears it when fixed", async () => {
    const broken = text.replace("string order_id = 2;", "strin order_id = 2;");
    client.change(orders, broken);
    const diags = await client.waitForDiagnostics(orders, (d) => d.length > 0);
    const want = find(broken, "strin order_id");
    const d = diags.find((x) => /strin/.test(msg(x)));
    assert.ok(d, `no diagnostic names the unknown type: ${JSON.stringify(diags)}`);
    assert.equal(d.range.start.line, want.line);
    assert.equal(d.range.start.character, want.character);
    assert.equal(d.severity, 1);
    client.change(orders, text);
    await client.waitForDiagnostics(orders, (x) => x.length === 0);
  });

  it("answers a burst of keystrokes with the diagnostics of the last one", async () => {
    // Retyping `string` letter by letter, each change sent at once: the compiles of the
    // broken steps are cancelled or overtaken, and what shows is the clean last version.
    const steps = ["", "s", "st", "str", "stri", "strin", "string"].map((t) => text.replace("string order_id = 2;", `${t} order_id = 2;`));
    for (const step of steps) client.change(orders, step);
    assert.deepEqual(await client.waitForCurrentDiagnostics(orders, 60_000), []);
    // And the other way: a burst that ends broken shows the error of its last step.
    for (const step of [...steps].reverse().slice(0, 2)) client.change(orders, step);
    const diags = await client.waitForCurrentDiagnostics(orders, 60_000);
    assert.ok(
      diags.some((d) => /strin/.test(msg(d))),
      `the last step's error: ${JSON.stringify(diags)}`,
    );
    client.change(orders, text);
    assert.deepEqual(await client.waitForCurrentDiagnostics(orders, 60_000), []);
  });

  it("compiles with the unsaved buffers of other files of the module", async () => {
    const moneyText = readFileSync(money, "utf8");
    client.open(money);
    // Renamed in the editor only: the disk still says Money, the buffer does not.
    client.change(money, moneyText.replace("message Money {", "message Cash {"));
    const diags = await client.waitForDiagnostics(orders, (d) => d.some((x) => msg(x).includes("Money")));
    const d = diags.find((x) => msg(x).includes("Money"))!;
    assert.equal(d.range.start.line, find(text, "Money total").line);
    client.change(money, moneyText);
    await client.waitForDiagnostics(orders, (x) => x.length === 0);
  });

  it("reports a routing-key field path that does not exist, on the option", async () => {
    const broken = text.replace('field: "customer.id"', 'field: "customer.idx"');
    client.change(orders, broken);
    const diags = await client.waitForDiagnostics(orders, (d) => d.some((x) => msg(x).includes("idx")));
    const d = diags.find((x) => msg(x).includes("idx"))!;
    const optionLine = find(broken, 'field: "customer.idx"').line;
    const serviceLine = find(broken, "option (grpcrouter.v1.service)").line;
    assert.ok(
      d.range.start.line >= serviceLine && d.range.start.line <= optionLine,
      `diagnostic at line ${d.range.start.line}, option at ${serviceLine}..${optionLine}`,
    );
    assert.equal(d.source, "grpcrouter");
    client.change(orders, text);
    await client.waitForDiagnostics(orders, (x) => x.length === 0);
  });

  it("goes to the definition of a type in another file and of an import", async () => {
    const uri = pathToFileURL(orders).href;
    const moneyText = readFileSync(money, "utf8");
    const atType = find(text, "Money total");
    const loc = await client.request<Location | null>("textDocument/definition", {
      textDocument: { uri },
      position: { line: atType.line, character: atType.character + 2 },
    });
    assert.ok(loc);
    assert.equal(loc.uri, pathToFileURL(money).href);
    assert.deepEqual(loc.range.start, find(moneyText, "Money {"));

    const atNested = find(text, "Status status");
    const nested = await client.request<Location | null>("textDocument/definition", { textDocument: { uri }, position: atNested });
    assert.equal(nested?.uri, uri);
    assert.deepEqual(nested?.range.start, find(text, "Status {"));

    const atImport = find(text, '"shop/v1/money.proto"');
    const imp = await client.request<Location | null>("textDocument/definition", {
      textDocument: { uri },
      position: { line: atImport.line, character: atImport.character + 5 },
    });
    assert.equal(imp?.uri, pathToFileURL(money).href);
  });

  it("hovers with the doc comment, and with the call kind of an rpc", async () => {
    const uri = pathToFileURL(orders).href;
    const onCustomer = find(text, "Customer customer = 1");
    const h = await client.request<Hover | null>("textDocument/hover", { textDocument: { uri }, position: onCustomer });
    assert.match(hoverText(h), /message shop\.v1\.Customer/);
    assert.match(hoverText(h), /Who placed an order\./);

    const onWatch = find(text, "Watch(");
    const w = hoverText(await client.request<Hover | null>("textDocument/hover", { textDocument: { uri }, position: onWatch }));
    assert.match(w, /server streaming/);
    assert.match(w, /Watch streams the changes of an order\./);
    assert.match(w, /field \*\*\d+\*\* of `shop\.v1\.\w+`/);
    const onSync = find(text, "Sync(");
    assert.match(hoverText(await client.request<Hover | null>("textDocument/hover", { textDocument: { uri }, position: onSync })), /bidirectional streaming/);
  });

  it("outlines the file: services with their rpcs, messages with nested enums", async () => {
    const symbols = await client.request<DocumentSymbol[]>("textDocument/documentSymbol", { textDocument: { uri: pathToFileURL(orders).href } });
    const names = symbols.map((s) => s.name);
    assert.deepEqual(names, ["Customer", "GetOrderRequest", "Order", "ImportSummary", "Orders"]);
    const service = symbols.find((s) => s.name === "Orders")!;
    assert.deepEqual(
      service.children?.map((c) => c.name),
      ["Get", "Watch", "Import", "Sync"],
    );
    assert.equal(service.selectionRange.start.line, find(text, "Orders {").line);
    const order = symbols.find((s) => s.name === "Order")!;
    assert.ok(order.children?.some((c) => c.name === "Status" && c.children?.some((v) => v.name === "STATUS_SHIPPED")));
  });

  it("completes types in scope and grpcrouter's options", async () => {
    const uri = pathToFileURL(orders).href;
    // A new field in ImportSummary: types from this file, the import, and nested ones.
    const withField = text.replace("uint32 imported = 1;\n", "uint32 imported = 1;\n  \n");
    client.change(orders, withField);
    const at = find(withField, "uint32 imported = 1;\n  ");
    const items = await client.request<CompletionItem[]>("textDocument/completion", { textDocument: { uri }, position: { line: at.line + 1, character: 2 } });
    const labels = items.map((i) => i.label);
    for (const want of ["Money", "Customer", "Order.Status", "string", "repeated"]) assert.ok(labels.includes(want), `missing ${want} in ${labels.join(",")}`);
    // An imported file's types from another package complete by their full name; this
    // package's own types by the short name only.
    assert.ok(labels.includes("grpcrouter.v1.RoutingKey"), labels.join(","));
    assert.ok(!labels.includes("shop.v1.Money"), labels.join(","));

    const withBalancer = text.replace("balancer: BALANCER_CONSISTENT_HASH", "balancer: ");
    client.change(orders, withBalancer);
    const b = find(withBalancer, "balancer: ");
    const bal = await client.request<CompletionItem[]>("textDocument/completion", {
      textDocument: { uri },
      position: { line: b.line, character: b.character + "balancer: ".length },
    });
    assert.ok(
      bal.some((i) => i.label === "BALANCER_LEAST_OUTSTANDING"),
      JSON.stringify(bal.map((i) => i.label)),
    );

    const withOption = text.replace("  // Get returns one order.", "  option (\n  // Get returns one order.");
    client.change(orders, withOption);
    const o = find(withOption, "  option (\n");
    const opts = await client.request<CompletionItem[]>("textDocument/completion", {
      textDocument: { uri },
      position: { line: o.line, character: "  option (".length },
    });
    assert.deepEqual(
      opts.map((i) => i.label),
      ["grpcrouter.v1.service"],
    );
    client.change(orders, text);
    await client.waitForDiagnostics(orders, (x) => x.length === 0);
  });

  it("puts Generate and Start router lenses over a service, then the live instance count", async () => {
    const uri = pathToFileURL(orders).href;
    const serviceLine = find(text, "service Orders").line;
    const lenses = await client.request<CodeLens[]>("textDocument/codeLens", { textDocument: { uri } });
    assert.deepEqual(
      lenses.map((l) => [l.range.start.line, l.command?.title, l.command?.command]),
      [
        [serviceLine, "Generate", "grpcrouter.generate"],
        [serviceLine, "Start router", "grpcrouter.startRouter"],
      ],
    );
    await client.connection.sendNotification(routerStateNotification, { running: true, address: "127.0.0.1:1", instances: { "shop.v1.Orders": 2 } });
    let titles: (string | undefined)[] = [];
    for (let i = 0; i < 50 && !titles.includes("2 instances registered"); i++) {
      titles = (await client.request<CodeLens[]>("textDocument/codeLens", { textDocument: { uri } })).map((l) => l.command?.title);
    }
    assert.deepEqual(titles, ["Generate", "2 instances registered"]);
    await client.connection.sendNotification(routerStateNotification, { running: false });
  });
});

describe("generate on save", () => {
  let ws: string;
  let client: TestClient;
  let orders: string;
  let text: string;

  before(async () => {
    ws = copyFixture("editor-workspace");
    orders = path.join(ws, "proto/shop/v1/orders.proto");
    text = readFileSync(orders, "utf8");
    client = await TestClient.start({ folders: [ws] });
    client.open(orders);
  });

  after(() => stopAndRemove(client, ws));

  const nextSummary = (from: number) => client.waitFor("a generate summary", () => client.generatedSince(from)[0], 120_000);

  it("writes the generated files when a .proto is saved, and logs a summary", async () => {
    const from = client.notifications.length;
    client.save(orders);
    const s = await nextSummary(from);
    assert.equal(s.ok, true, s.message);
    assert.equal(s.trigger, "save");
    const router = path.join(ws, "proto/gen/shop/v1/orders_router.proto");
    assert.ok(existsSync(router), "orders_router.proto was not written");
    assert.ok(existsSync(path.join(ws, "proto/gen/shop/v1/orders_pb.ts")));
    assert.ok(s.written > 0);
    assert.ok(
      client.logs.some((l) => l.includes(s.message)),
      "the summary is in the log",
    );
    // The editor showed progress while it ran: begun with a title, and ended.
    const begun = client.progress.find((p) => p.value.kind === "begin" && p.value.title === "gRPC Router: generating");
    assert.ok(begun, JSON.stringify(client.progress));
    assert.ok(client.progress.some((p) => p.token === begun.token && p.value.kind === "end"));

    // The hover's frame number is the one the written router proto gives the method.
    const routerText = readFileSync(router, "utf8");
    const m = /(\d+); \/\/ rpc Watch/.exec(routerText);
    assert.ok(m, routerText);
    const at = find(text, "Watch(");
    const h = await client.request<Hover | null>("textDocument/hover", { textDocument: { uri: pathToFileURL(orders).href }, position: at });
    assert.match(hoverText(h), new RegExp(`field \\*\\*${m[1]}\\*\\*`));
  });

  it("leaves good output in place when the saved file is broken", async () => {
    const router = path.join(ws, "proto/gen/shop/v1/orders_router.proto");
    const before = readFileSync(router, "utf8");
    const mtime = statSync(router).mtimeMs;
    const broken = text.replace("rpc Get(GetOrderRequest) returns (Order);", "rpc Get(GetOrderRequest) returns (Nope);");
    writeFileSync(orders, broken);
    client.change(orders, broken);
    const from = client.notifications.length;
    client.save(orders);
    const s = await nextSummary(from);
    assert.equal(s.ok, false);
    assert.ok(s.errors > 0);
    assert.match(s.message, /not generated/);
    assert.equal(readFileSync(router, "utf8"), before);
    assert.equal(statSync(router).mtimeMs, mtime);
    await client.waitForDiagnostics(orders, (d) => d.some((x) => msg(x).includes("Nope")));

    writeFileSync(orders, text);
    client.change(orders, text);
    const again = client.notifications.length;
    client.save(orders);
    assert.equal((await nextSummary(again)).ok, true);
  });

  it("a save while generating cancels the running generation and starts over", async () => {
    const from = client.notifications.length;
    client.save(orders);
    client.save(orders);
    const summaries = await client.waitFor(
      "two summaries",
      () => {
        const s = client.generatedSince(from);
        return s.length >= 2 ? s : undefined;
      },
      120_000,
    );
    // The second save lands while the first generation runs (it has yet to compile): the
    // first is cancelled, the second completes.
    assert.equal(summaries.length, 2);
    assert.equal(summaries[0]!.cancelled, true, summaries[0]!.message);
    assert.equal(summaries[1]!.ok, true, summaries[1]!.message);
  });

  it("honours grpcrouter.diagnostics.enable = false (beside the Buf extension)", async () => {
    client.setSettings({ diagnostics: { enable: false } });
    const broken = text.replace("string order_id = 2;", "strin order_id = 2;");
    client.change(orders, broken);
    // The server compiles the broken buffer and answers for that very version: no problems.
    assert.deepEqual(await client.waitForCurrentDiagnostics(orders), []);
    // What the Buf extension cannot know still shows: a routing key that does not exist.
    client.change(orders, text.replace('field: "customer.id"', 'field: "customer.idx"'));
    const routing = await client.waitForCurrentDiagnostics(orders);
    assert.ok(routing.length > 0 && routing.every((d) => d.source === "grpcrouter" && msg(d).includes("idx")), JSON.stringify(routing));
    client.change(orders, broken);
    client.setSettings({});
    await client.waitForDiagnostics(orders, (d) => d.some((x) => msg(x).includes("strin")));
    client.change(orders, text);
    assert.deepEqual(await client.waitForCurrentDiagnostics(orders), []);
  });
});

describe("modules found like buf", () => {
  let tmp: string;
  let client: TestClient;
  let mono: string;
  let second: string;

  before(async () => {
    // One folder holding two buf modules (buf.yaml v2 at the module, and v2 with
    // `modules: [{path: proto}]`), and a second workspace root with no buf.yaml at all.
    tmp = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-modules-"));
    mono = path.join(tmp, "mono");
    cpSync(path.join(repoRoot, "test-fixtures/editor-workspace"), path.join(mono, "shop"), { recursive: true });
    cpSync(path.join(repoRoot, "test-fixtures/bufyaml-v2"), path.join(mono, "inv"), { recursive: true });
    second = path.join(tmp, "second");
    cpSync(path.join(repoRoot, "test-fixtures/syntaxes/proto"), second, { recursive: true });
    client = await TestClient.start({ folders: [mono, second], settings: { generateOnSave: false } });
  });

  after(async () => {
    await client?.stop();
    if (tmp) removeDir(tmp);
  });

  it("compiles each file in its own module, with well-known types and no set-up", async () => {
    const inventory = path.join(mono, "inv/proto/inv/v1/inventory.proto");
    const invText = readFileSync(inventory, "utf8");
    client.open(inventory);
    assert.deepEqual(await client.waitForCurrentDiagnostics(inventory), []);
    const uri = pathToFileURL(inventory).href;
    const wkt = find(invText, "google.protobuf.Int64Value);");
    assert.match(
      hoverText(await client.request<Hover | null>("textDocument/hover", { textDocument: { uri }, position: wkt })),
      /message google\.protobuf\.Int64Value/,
    );
    const req = await client.request<Location | null>("textDocument/definition", { textDocument: { uri }, position: find(invText, "StockRequest)") });
    assert.equal(req?.uri, uri);

    const modern = path.join(second, "modern/v1/modern.proto");
    const modernText = readFileSync(modern, "utf8");
    client.open(modern);
    assert.deepEqual(await client.waitForCurrentDiagnostics(modern), []);
    const imp = find(modernText, '"legacy/v1/legacy.proto"');
    const loc = await client.request<Location | null>("textDocument/definition", {
      textDocument: { uri: pathToFileURL(modern).href },
      position: { line: imp.line, character: imp.character + 3 },
    });
    assert.equal(loc?.uri, pathToFileURL(path.join(second, "legacy/v1/legacy.proto")).href);

    const orders = path.join(mono, "shop/proto/shop/v1/orders.proto");
    client.open(orders);
    assert.deepEqual(await client.waitForCurrentDiagnostics(orders), []);

    const modules = await client.request(modulesRequest, {});
    assert.deepEqual(modules.map((m) => m.root).sort(), [path.join(mono, "inv"), path.join(mono, "shop/proto"), second].sort());
    assert.deepEqual(modules.find((m) => m.root === second)?.services.sort(), ["legacy.v1.Legacy", "modern.v1.Modern"]);
  });

  it("keeps an error in its module", async () => {
    const inventory = path.join(mono, "inv/proto/inv/v1/inventory.proto");
    const orders = path.join(mono, "shop/proto/shop/v1/orders.proto");
    const invText = readFileSync(inventory, "utf8");
    client.change(inventory, invText.replace("string sku = 1;", "strin sku = 1;"));
    const diags = await client.waitForCurrentDiagnostics(inventory);
    assert.ok(
      diags.some((d) => msg(d).includes("strin")),
      JSON.stringify(diags),
    );
    assert.deepEqual(client.diagnostics.get(pathToFileURL(orders).href), []);
    client.change(inventory, invText);
    assert.deepEqual(await client.waitForCurrentDiagnostics(inventory), []);
  });

  it("moves a file to the module of a buf.yaml created above it, and back when it goes (the files are watched)", async () => {
    const modern = path.join(second, "modern/v1/modern.proto");
    const uri = pathToFileURL(modern).href;
    const rootOf = async () => (await client.request(modulesRequest, { uri })).map((m) => m.root);
    /** The watched-file notification is handled on its own: ask until the answer changes. */
    const until = async (want: string) => {
      const deadline = Date.now() + 30_000;
      while ((await rootOf())[0] !== want && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(await rootOf(), [want]);
    };
    assert.deepEqual(await rootOf(), [second]);
    const bufYaml = path.join(second, "modern/buf.yaml");
    writeFileSync(bufYaml, "version: v2\n");
    void client.connection.sendNotification("workspace/didChangeWatchedFiles", { changes: [{ uri: pathToFileURL(bufYaml).href, type: 1 }] });
    await until(path.join(second, "modern"));
    rmSync(bufYaml);
    void client.connection.sendNotification("workspace/didChangeWatchedFiles", { changes: [{ uri: pathToFileURL(bufYaml).href, type: 3 }] });
    await until(second);
  });
});
