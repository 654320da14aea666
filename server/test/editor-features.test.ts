// Semantic tokens, buf format, buf lint, buf breaking, error tolerance and file watching,
// asked of the bundled language server over stdio the way an editor asks, with the real buf.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { findBuf } from "@grpcrouter/generator";
import { after, before, describe, it } from "node:test";
import { TextDocument } from "vscode-languageserver-textdocument";
import type { CodeLens, DocumentSymbol, Hover, InitializeResult, Location, SemanticTokens, TextEdit } from "vscode-languageserver-protocol";
import { copyFixture, hoverText, msg, openEditorWorkspace, pathToFileURL, removeDir, stopAndRemove, TestClient } from "./lsp-client.js";
import { find } from "./text-edits.js";

const doc = (file: string) => ({ textDocument: { uri: pathToFileURL(file).href } });

/** What buf itself prints for a file, run here by hand. */
function byBuf(text: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-fmt-"));
  try {
    writeFileSync(path.join(dir, "x.proto"), text);
    return execFileSync(findBuf(), ["format", "x.proto"], { cwd: dir, encoding: "utf8" });
  } finally {
    removeDir(dir);
  }
}

function apply(text: string, edits: TextEdit[]): string {
  return TextDocument.applyEdits(TextDocument.create("file:///x.proto", "proto", 1, text), edits);
}

/** Decoded semantic tokens: text, type and modifiers of each. */
function decode(text: string, tokens: SemanticTokens, legend: { tokenTypes: string[]; tokenModifiers: string[] }) {
  const lines = text.split("\n");
  const out: { text: string; line: number; type: string; modifiers: string[] }[] = [];
  let line = 0;
  let char = 0;
  for (let i = 0; i < tokens.data.length; i += 5) {
    const [dl, dc, len, type, mods] = tokens.data.slice(i, i + 5) as [number, number, number, number, number];
    line += dl;
    char = dl === 0 ? char + dc : dc;
    out.push({
      text: lines[line]!.slice(char, char + len),
      line,
      type: legend.tokenTypes[type]!,
      modifiers: legend.tokenModifiers.filter((_, b) => mods & (1 << b)),
    });
  }
  return out;
}

describe("editor features over stdio", () => {
  let ws: string;
  let client: TestClient;
  let init: InitializeResult;
  let orders: string;
  let money: string;
  let text: string;

  before(async () => {
    ({ ws, client, orders, money, text } = await openEditorWorkspace());
    init = client.initializeResult!;
  });

  after(() => stopAndRemove(client, ws));

  /** The legend the server announced in initialize. */
  const legend = () => init.capabilities.semanticTokensProvider?.legend ?? { tokenTypes: [], tokenModifiers: [] };

  it("announces semantic tokens (full and range), formatting and will-save edits", async () => {
    const caps = init.capabilities;
    assert.ok(caps.semanticTokensProvider, "no semanticTokensProvider");
    assert.equal(caps.semanticTokensProvider.full, true);
    assert.equal(caps.semanticTokensProvider.range, true);
    assert.ok(legend().tokenTypes.includes("struct") && legend().tokenTypes.includes("enumMember"));
    assert.equal(caps.documentFormattingProvider, true);
    assert.equal(caps.documentRangeFormattingProvider, true);
    assert.equal((caps.textDocumentSync as { willSaveWaitUntil?: boolean }).willSaveWaitUntil, true);
  });

  it("gives semantic tokens from the descriptors: messages, enums, values, fields, rpcs, services, options", async () => {
    const t = decode(text, await client.request<SemanticTokens>("textDocument/semanticTokens/full", doc(orders)), legend());
    const of = (s: string, nth = 0) => {
      const hit = t.filter((x) => x.text === s)[nth];
      assert.ok(hit, `no semantic token for ${s}: ${JSON.stringify(t.map((x) => x.text))}`);
      return `${hit.type}${hit.modifiers.map((m) => `+${m}`).join("")}`;
    };
    assert.equal(of("shop.v1"), "namespace");
    assert.equal(of("Orders"), "interface+declaration");
    assert.equal(of("grpcrouter.v1.service"), "decorator");
    assert.equal(of("BALANCER_CONSISTENT_HASH"), "enumMember");
    assert.equal(of("routing_key"), "property");
    assert.equal(of("balancer"), "property");
    assert.equal(of("Get"), "method+declaration");
    assert.equal(of("GetOrderRequest"), "struct");
    assert.equal(of("Customer"), "struct+declaration");
    assert.equal(of("id"), "property+declaration");
    assert.equal(of("Money"), "struct");
    assert.equal(of("Status"), "enum");
    assert.equal(of("Status", 1), "enum+declaration");
    assert.equal(of("STATUS_OPEN"), "enumMember+declaration");
    // Keywords and scalars are the grammar's: no semantic token claims them.
    assert.ok(!t.some((x) => ["message", "string", "rpc", "returns", "stream"].includes(x.text)));
  });

  it("gives the semantic tokens of a range only", async () => {
    const from = find(text, "message Customer").line;
    const r = await client.request<SemanticTokens>("textDocument/semanticTokens/range", {
      ...doc(orders),
      range: { start: { line: from, character: 0 }, end: { line: from + 3, character: 0 } },
    });
    const t = decode(text, r, legend());
    assert.deepEqual([...new Set(t.map((x) => x.text))], ["Customer", "id", "name"]);
  });

  it("formats the document with buf format", async () => {
    const messy = text.replace("message Customer {\n  string id = 1;", "message   Customer {\n      string id=1;");
    client.change(orders, messy);
    const edits = await client.request<TextEdit[]>("textDocument/formatting", { ...doc(orders), options: { tabSize: 2, insertSpaces: true } });
    assert.ok(edits.length > 0);
    const formatted = apply(messy, edits);
    assert.equal(formatted, byBuf(messy));
    assert.ok(formatted.includes("message Customer {\n  string id = 1;"));
    // Only the changed lines are replaced, not the whole file (the cursor stays where it is).
    assert.ok(
      edits.every((e) => e.range.end.line - e.range.start.line <= 2),
      JSON.stringify(edits),
    );
    client.change(orders, text);
  });

  it("formats a range: only the hunks inside it change", async () => {
    const messy = text.replace("string id = 1;", "string   id=1;").replace("uint32 imported = 1;", "uint32   imported=1;");
    client.change(orders, messy);
    const line = find(messy, "uint32").line;
    const edits = await client.request<TextEdit[]>("textDocument/rangeFormatting", {
      ...doc(orders),
      range: { start: { line, character: 0 }, end: { line, character: 5 } },
      options: { tabSize: 2, insertSpaces: true },
    });
    const out = apply(messy, edits);
    assert.ok(out.includes("uint32 imported = 1;"), out);
    assert.ok(out.includes("string   id=1;"), "a line outside the range was formatted");
    client.change(orders, text);
  });

  it("leaves a broken file as it is and says why", async () => {
    const broken = text.replace("string order_id = 2;", "string order_id = ;");
    client.change(orders, broken);
    const from = client.notifications.length;
    const edits = await client.request<TextEdit[]>("textDocument/formatting", { ...doc(orders), options: { tabSize: 2, insertSpaces: true } });
    assert.deepEqual(edits, []);
    const shown = await client.waitFor(
      "a message saying why",
      () => client.notifications.slice(from).find((n) => n.method === "window/showMessage")?.params as { message: string } | undefined,
    );
    assert.match(shown.message, new RegExp(`line ${find(broken, "order_id = ;").line + 1}`));
    client.change(orders, text);
  });

  it("formats on save when grpcrouter.format.onSave is set, and only then", async () => {
    const clean = byBuf(text);
    const messy = clean.replace("string name = 2;", "string name=2;");
    client.change(orders, messy);
    const willSave = () => client.request<TextEdit[] | null>("textDocument/willSaveWaitUntil", { ...doc(orders), reason: 1 });
    assert.deepEqual((await willSave()) ?? [], []);
    client.setSettings({ generateOnSave: false, format: { onSave: true } });
    assert.equal(apply(messy, (await willSave()) ?? []), clean);
    client.setSettings({ generateOnSave: false });
    client.change(orders, text);
    await client.waitForCurrentDiagnostics(orders);
  });

  it("keeps hover, definition, outline and lenses right while the file is broken", async () => {
    // Three lines above Customer and a syntax error below it: the module does not compile.
    const broken = text
      .replace("// Who placed an order.", "// one\n// two\n// three\n// Who placed an order.")
      .replace("string order_id = 2;", "string order_id = ;");
    client.change(orders, broken);
    await client.waitForDiagnostics(orders, (d) => d.some((x) => x.severity === 1));
    const use = find(broken, "Customer customer = 1");
    const def = await client.request<Location | null>("textDocument/definition", { ...doc(orders), position: use });
    assert.ok(def);
    assert.deepEqual(def.range.start, { line: find(broken, "message Customer").line, character: "message ".length });
    const h = await client.request<Hover | null>("textDocument/hover", { ...doc(orders), position: use });
    assert.match(hoverText(h), /Who placed an order/);
    const symbols = await client.request<DocumentSymbol[]>("textDocument/documentSymbol", doc(orders));
    const customer = symbols.find((s) => s.name === "Customer");
    assert.equal(customer?.selectionRange.start.line, find(broken, "message Customer").line);
    const lenses = await client.request<CodeLens[]>("textDocument/codeLens", doc(orders));
    assert.ok(lenses.length > 0 && lenses.every((l) => l.range.start.line === find(broken, "service Orders").line), JSON.stringify(lenses));
    client.change(orders, text);
    await client.waitForDiagnostics(orders, (d) => d.length === 0);
  });

  it("registers watchers for .proto and buf.yaml, and notices a rename in a file that is not open", async () => {
    const reg = await client.waitFor("a file watcher registration", () => client.registrations.find((r) => r.method === "workspace/didChangeWatchedFiles"));
    const globs = (reg.registerOptions as { watchers: { globPattern: string }[] }).watchers.map((w) => w.globPattern);
    assert.ok(globs.includes("**/*.proto") && globs.includes("**/buf.yaml"), JSON.stringify(globs));
    const moneyText = readFileSync(money, "utf8");
    writeFileSync(money, moneyText.replace("message Money {", "message Cash {"));
    void client.connection.sendNotification("workspace/didChangeWatchedFiles", { changes: [{ uri: pathToFileURL(money).href, type: 2 }] });
    await client.waitForDiagnostics(orders, (d) => d.some((x) => msg(x).includes("Money")));
    writeFileSync(money, moneyText);
    void client.connection.sendNotification("workspace/didChangeWatchedFiles", { changes: [{ uri: pathToFileURL(money).href, type: 2 }] });
    await client.waitForDiagnostics(orders, (d) => d.length === 0);
  });
});

describe("a module that does not compile at start", () => {
  let ws: string;
  let client: TestClient;

  before(async () => {
    ws = copyFixture("editor-workspace");
    // money.proto is broken on disk before the server ever sees the module.
    const money = path.join(ws, "proto/shop/v1/money.proto");
    writeFileSync(money, readFileSync(money, "utf8").replace("int64 units = 2;", "int64 units = ;"));
    client = await TestClient.start({ folders: [ws], settings: { generateOnSave: false } });
  });

  after(() => stopAndRemove(client, ws));

  it("still answers hover, definition, outline and lenses in the files that are fine", async () => {
    const orders = path.join(ws, "proto/shop/v1/orders.proto");
    const text = readFileSync(orders, "utf8");
    client.open(orders);
    await client.waitForDiagnostics(orders, () => true);
    const use = find(text, "Customer customer = 1");
    const location = await poll(() => client.request<Location | null>("textDocument/definition", { ...doc(orders), position: use }));
    assert.equal(location.range.start.line, find(text, "message Customer").line);
    const h = await client.request<Hover | null>("textDocument/hover", { ...doc(orders), position: find(text, "GetOrderRequest") });
    assert.match(hoverText(h), /message shop\.v1\.GetOrderRequest/);
    const symbols = await client.request<DocumentSymbol[]>("textDocument/documentSymbol", doc(orders));
    assert.ok(symbols.some((s) => s.name === "Orders"));
    const lenses = await client.request<CodeLens[]>("textDocument/codeLens", doc(orders));
    assert.ok(lenses.some((l) => l.command?.title === "Generate"));
    // The broken file itself is indexed too, without its broken line.
    const money = path.join(ws, "proto/shop/v1/money.proto");
    const toMoney = await client.request<Location | null>("textDocument/definition", { ...doc(orders), position: find(text, "Money total") });
    assert.equal(toMoney?.uri, pathToFileURL(money).href);
    assert.equal(toMoney?.range.start.line, find(readFileSync(money, "utf8"), "message Money").line);
  });

  /** Asks until the server answers (it indexes the healthy part after the failed compile). */
  async function poll<T>(ask: () => Promise<T | null>): Promise<T> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const v = await ask();
      if (v) return v;
      if (Date.now() > deadline) throw new Error("no answer within 60 s");
      await new Promise((r) => setTimeout(r, 200));
    }
  }
});

describe("buf lint and buf breaking", () => {
  let ws: string;
  let client: TestClient;
  let orders: string;
  let text: string;

  before(async () => {
    ws = copyFixture("editor-workspace");
    orders = path.join(ws, "proto/shop/v1/orders.proto");
    text = readFileSync(orders, "utf8");
    writeFileSync(path.join(ws, "proto/buf.yaml"), "version: v2\nlint:\n  use:\n    - FIELD_LOWER_SNAKE_CASE\n    - ENUM_VALUE_UPPER_SNAKE_CASE\n");
    // A git repository whose HEAD is the fixture, for breaking changes against it.
    const git = (...args: string[]) => execFileSync("git", args, { cwd: ws, stdio: "pipe" });
    git("init", "-q");
    git("add", ".");
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "base");
    client = await TestClient.start({ folders: [ws], settings: { generateOnSave: false } });
    client.open(orders);
  });

  after(() => stopAndRemove(client, ws));

  it("shows buf lint findings of the buf.yaml rules, with the rule id, as you type", async () => {
    await client.waitForDiagnostics(orders, (d) => d.length === 0);
    const linted = text.replace("string order_id = 2;", "string orderId = 2;");
    client.change(orders, linted);
    const diags = await client.waitForDiagnostics(orders, (d) => d.some((x) => x.source === "buf lint"));
    const d = diags.find((x) => x.source === "buf lint")!;
    assert.equal(d.code, "FIELD_LOWER_SNAKE_CASE");
    assert.equal(d.severity, 2);
    assert.deepEqual(d.range.start, find(linted, "orderId"));
    // Two lines above and a syntax error below: no new lint run, the finding moves with its line.
    const moved = linted
      .replace("message GetOrderRequest {", "// one\n// two\nmessage GetOrderRequest {")
      .replace("uint32 imported = 1;", "uint32 imported = ;");
    client.change(orders, moved);
    const now = await client.waitForCurrentDiagnostics(orders);
    assert.ok(
      now.some((x) => x.severity === 1),
      JSON.stringify(now),
    );
    const lint = now.find((x) => x.code === "FIELD_LOWER_SNAKE_CASE");
    assert.deepEqual(lint?.range.start, find(moved, "orderId"));
    client.change(orders, text);
    await client.waitForDiagnostics(orders, (x) => x.length === 0);
  });

  it("applies rules added to buf.yaml on disk at once (the file is watched)", async () => {
    const bufYaml = path.join(ws, "proto/buf.yaml");
    const before = readFileSync(bufYaml, "utf8");
    writeFileSync(bufYaml, `${before}    - COMMENT_FIELD\n`);
    void client.connection.sendNotification("workspace/didChangeWatchedFiles", { changes: [{ uri: pathToFileURL(bufYaml).href, type: 2 }] });
    const diags = await client.waitForDiagnostics(orders, (d) => d.some((x) => x.code === "COMMENT_FIELD"));
    assert.ok(diags.every((x) => x.source === "buf lint"));
    writeFileSync(bufYaml, before);
    void client.connection.sendNotification("workspace/didChangeWatchedFiles", { changes: [{ uri: pathToFileURL(bufYaml).href, type: 2 }] });
    await client.waitForDiagnostics(orders, (d) => d.length === 0);
  });

  it("finds no breaking change unless asked, then those against the git ref", async () => {
    // Field 2 of Customer deleted: breaking, but nothing says so while the check is off.
    const broken = text.replace("  string name = 2;\n", "");
    client.change(orders, broken);
    assert.deepEqual(await client.waitForCurrentDiagnostics(orders), []);
    client.setSettings({ generateOnSave: false, breaking: { against: "HEAD" } });
    const diags = await client.waitForDiagnostics(orders, (d) => d.some((x) => x.source === "buf breaking"));
    const d = diags.find((x) => x.source === "buf breaking")!;
    assert.equal(d.code, "FIELD_NO_DELETE");
    assert.match(msg(d), /name/);
    // An unknown ref is said plainly, not swallowed.
    client.setSettings({ generateOnSave: false, breaking: { against: "no-such-ref" } });
    const bad = await client.waitForDiagnostics(orders, (x) => x.some((y) => msg(y).includes("no-such-ref")));
    assert.ok(bad.length > 0);
    client.setSettings({ generateOnSave: false });
    client.change(orders, text);
    await client.waitForDiagnostics(orders, (x) => x.length === 0);
  });
});

describe("buf lint in a buf.yaml v2 workspace with a module path", () => {
  let ws: string;
  let client: TestClient;

  before(async () => {
    ws = copyFixture("bufyaml-v2");
    // Rules of the module itself, under modules[].lint; import paths are relative to proto/.
    writeFileSync(path.join(ws, "buf.yaml"), "version: v2\nmodules:\n  - path: proto\n    lint:\n      use:\n        - FIELD_LOWER_SNAKE_CASE\n");
    client = await TestClient.start({ folders: [ws], settings: { generateOnSave: false } });
  });

  after(() => stopAndRemove(client, ws));

  it("puts the module's findings on its files", async () => {
    const inventory = path.join(ws, "proto/inv/v1/inventory.proto");
    const text = readFileSync(inventory, "utf8").replace("string sku = 1;", "string SKU = 1;");
    client.open(inventory, text);
    const diags = await client.waitForDiagnostics(inventory, (d) => d.some((x) => x.source === "buf lint"));
    const d = diags.find((x) => x.source === "buf lint")!;
    assert.equal(d.code, "FIELD_LOWER_SNAKE_CASE");
    assert.deepEqual(d.range.start, find(text, "SKU"));
  });
});
