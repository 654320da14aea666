// The TextMate grammar the extension contributes, run by vscode-textmate with the Oniguruma
// regex engine VS Code itself uses: every construct of a proto file gets the scope a theme
// colours. (The e2e walk checks the colours in a real VS Code; this one names each token.)
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import oniguruma from "vscode-oniguruma";
import textmate from "vscode-textmate";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const require = createRequire(import.meta.url);

/** Each token of `text` as [text, innermost scope] (whitespace-only tokens left out). */
type Scoped = [string, string][];

let grammar: textmate.IGrammar;

function scopes(text: string): Scoped {
  const out: Scoped = [];
  let state = textmate.INITIAL;
  for (const line of text.split("\n")) {
    const r = grammar.tokenizeLine(line, state);
    for (const t of r.tokens) {
      const s = line.slice(t.startIndex, t.endIndex);
      if (s.trim()) out.push([s, t.scopes[t.scopes.length - 1]!]);
    }
    state = r.ruleStack;
  }
  return out;
}

/** The scope of the first token that is exactly `tokenText` (after the nth occurrence). */
function scopeOf(tokens: Scoped, tokenText: string, nth = 0): string {
  const hits = tokens.filter(([t]) => t === tokenText);
  assert.ok(hits[nth], `no token ${JSON.stringify(tokenText)} in ${JSON.stringify(tokens)}`);
  return hits[nth]![1];
}

describe("the proto TextMate grammar", () => {
  before(async () => {
    const wasm = readFileSync(require.resolve("vscode-oniguruma/release/onig.wasm"));
    await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength));
    const registry = new textmate.Registry({
      onigLib: Promise.resolve({ createOnigScanner: (p) => new oniguruma.OnigScanner(p), createOnigString: (s) => new oniguruma.OnigString(s) }),
      loadGrammar: async () =>
        textmate.parseRawGrammar(readFileSync(path.join(repoRoot, "extension/syntaxes/proto.tmLanguage.json"), "utf8"), "proto.tmLanguage.json"),
    });
    grammar = (await registry.loadGrammar("source.proto"))!;
    assert.ok(grammar);
  });

  it("is contributed by the manifest for the proto language", () => {
    const manifest = JSON.parse(readFileSync(path.join(repoRoot, "package.json"), "utf8")) as {
      contributes: { grammars: { language: string; scopeName: string; path: string }[] };
    };
    const g = manifest.contributes.grammars.find((x) => x.language === "proto");
    assert.ok(g, "no grammar for proto in contributes.grammars");
    assert.equal(g.scopeName, "source.proto");
    assert.equal(path.resolve(repoRoot, g.path), path.join(repoRoot, "extension/syntaxes/proto.tmLanguage.json"));
  });

  it("scopes proto3 messages, fields, maps, oneofs, comments and reserved ranges", () => {
    const t = scopes(`syntax = "proto3";
package shop.v1;
import public "google/protobuf/timestamp.proto";
// A line comment
/* A block
   comment */
message Order {
  reserved 2, 15, 9 to 11, 40 to max;
  reserved "old_name";
  repeated string item_ids = 1 [deprecated = true, (my.opt).sub = "x"];
  map<string, google.protobuf.Timestamp> times = 3;
  oneof payment {
    Card card = 4;
  }
  optional int64 cents = 0x1F;
}`);
    assert.equal(scopeOf(t, "syntax"), "keyword.other.syntax.proto");
    assert.equal(scopeOf(t, "package"), "keyword.other.package.proto");
    assert.equal(scopeOf(t, "shop.v1"), "entity.name.namespace.proto");
    assert.equal(scopeOf(t, "public"), "keyword.other.modifier.proto");
    assert.equal(scopeOf(t, "google/protobuf/timestamp.proto"), "string.quoted.double.proto");
    assert.equal(scopeOf(t, " A line comment"), "comment.line.double-slash.proto");
    assert.equal(scopeOf(t, "   comment "), "comment.block.proto");
    assert.equal(scopeOf(t, "message"), "keyword.other.message.proto");
    assert.equal(scopeOf(t, "Order"), "entity.name.type.message.proto");
    assert.equal(scopeOf(t, "reserved"), "keyword.other.reserved.proto");
    assert.equal(scopeOf(t, "to"), "keyword.other.range.proto");
    assert.equal(scopeOf(t, "max"), "keyword.other.range.proto");
    assert.equal(scopeOf(t, "15"), "constant.numeric.integer.proto");
    assert.equal(scopeOf(t, "old_name"), "string.quoted.double.proto");
    assert.equal(scopeOf(t, "repeated"), "storage.modifier.label.proto");
    assert.equal(scopeOf(t, "string"), "support.type.scalar.proto");
    assert.equal(scopeOf(t, "item_ids"), "variable.other.field.proto");
    assert.equal(scopeOf(t, "1"), "constant.numeric.integer.field-number.proto");
    assert.equal(scopeOf(t, "deprecated"), "support.other.option.proto");
    assert.equal(scopeOf(t, "true"), "constant.language.boolean.proto");
    assert.equal(scopeOf(t, "my.opt"), "entity.name.function.option.proto");
    assert.equal(scopeOf(t, "map"), "storage.type.map.proto");
    assert.equal(scopeOf(t, "google.protobuf.Timestamp"), "entity.name.type.proto");
    assert.equal(scopeOf(t, "times"), "variable.other.field.proto");
    assert.equal(scopeOf(t, "oneof"), "keyword.other.oneof.proto");
    assert.equal(scopeOf(t, "payment"), "variable.other.oneof.proto");
    assert.equal(scopeOf(t, "Card"), "entity.name.type.proto");
    assert.equal(scopeOf(t, "optional"), "storage.modifier.label.proto");
    assert.equal(scopeOf(t, "0x1F"), "constant.numeric.integer.field-number.proto");
  });

  it("scopes services, rpcs with streams, options and editions", () => {
    const t = scopes(`edition = "2023";
option java_package = "com.example";
option features.field_presence = IMPLICIT;
service Orders {
  option (grpcrouter.v1.service) = { routing_key: "customer_id" tunnel { max_frame: 1024 } };
  rpc Place(PlaceRequest) returns (stream PlaceReply);
  rpc Watch(stream .shop.v1.WatchRequest) returns (WatchReply) {
    option idempotency_level = NO_SIDE_EFFECTS;
  }
}
enum Status {
  STATUS_UNSPECIFIED = 0;
  STATUS_OK = 1 [deprecated = true];
}`);
    assert.equal(scopeOf(t, "edition"), "keyword.other.syntax.proto");
    assert.equal(scopeOf(t, "java_package"), "support.other.option.proto");
    assert.equal(scopeOf(t, "com.example"), "string.quoted.double.proto");
    assert.equal(scopeOf(t, "field_presence"), "support.other.option.proto");
    assert.equal(scopeOf(t, "IMPLICIT"), "constant.other.enum.proto");
    assert.equal(scopeOf(t, "service"), "keyword.other.service.proto");
    assert.equal(scopeOf(t, "Orders"), "entity.name.type.service.proto");
    assert.equal(scopeOf(t, "grpcrouter.v1.service"), "entity.name.function.option.proto");
    assert.equal(scopeOf(t, "routing_key"), "variable.other.member.proto");
    assert.equal(scopeOf(t, "max_frame"), "variable.other.member.proto");
    assert.equal(scopeOf(t, "1024"), "constant.numeric.integer.proto");
    assert.equal(scopeOf(t, "rpc"), "keyword.other.rpc.proto");
    assert.equal(scopeOf(t, "Place"), "entity.name.function.rpc.proto");
    assert.equal(scopeOf(t, "PlaceRequest"), "entity.name.type.proto");
    assert.equal(scopeOf(t, "returns"), "keyword.other.returns.proto");
    assert.equal(scopeOf(t, "stream"), "keyword.other.stream.proto");
    assert.equal(scopeOf(t, "stream", 1), "keyword.other.stream.proto");
    assert.equal(scopeOf(t, ".shop.v1.WatchRequest"), "entity.name.type.proto");
    assert.equal(scopeOf(t, "NO_SIDE_EFFECTS"), "constant.other.enum.proto");
    assert.equal(scopeOf(t, "enum"), "keyword.other.enum.proto");
    assert.equal(scopeOf(t, "Status"), "entity.name.type.enum.proto");
    assert.equal(scopeOf(t, "STATUS_OK"), "variable.other.enummember.proto");
  });

  it("scopes escapes in strings, proto2 labels and groups, and numbers of every form", () => {
    const t = scopes(`syntax = 'proto2';
message Legacy {
  required string name = 1 [default = "tab\\there \\x41\\101\\u00e9 \\q"];
  optional double ratio = 2 [default = -1.5e3];
  optional float f = 3 [default = inf];
  optional int32 o = 4 [default = 017];
  repeated group Result = 5 {
    required string url = 6;
  }
  extensions 100 to 199;
}
extend Legacy {
  optional string extra = 100;
}`);
    assert.equal(scopeOf(t, "'proto2'"), "string.quoted.proto");
    assert.equal(scopeOf(t, "required"), "storage.modifier.label.proto");
    assert.equal(scopeOf(t, "\\t"), "constant.character.escape.proto");
    assert.equal(scopeOf(t, "\\x41"), "constant.character.escape.proto");
    assert.equal(scopeOf(t, "\\101"), "constant.character.escape.proto");
    assert.equal(scopeOf(t, "\\u00e9"), "constant.character.escape.proto");
    assert.equal(scopeOf(t, "\\q"), "invalid.illegal.escape.proto");
    assert.equal(scopeOf(t, "-1.5e3"), "constant.numeric.float.proto");
    assert.equal(scopeOf(t, "inf"), "constant.numeric.float.proto");
    assert.equal(scopeOf(t, "017"), "constant.numeric.octal.proto");
    assert.equal(scopeOf(t, "group"), "keyword.other.group.proto");
    assert.equal(scopeOf(t, "Result"), "entity.name.type.message.proto");
    assert.equal(scopeOf(t, "url"), "variable.other.field.proto");
    assert.equal(scopeOf(t, "extensions"), "keyword.other.reserved.proto");
    assert.equal(scopeOf(t, "extend"), "keyword.other.extend.proto");
    assert.equal(scopeOf(t, "extra"), "variable.other.field.proto");
  });

  it("scopes every declaration keyword of the repository's own .proto files as a keyword", () => {
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (e.name === "node_modules" || e.name.startsWith(".")) continue;
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith(".proto")) files.push(p);
      }
    };
    for (const d of ["proto", "test-fixtures", "examples"]) walk(path.join(repoRoot, d));
    assert.ok(files.length > 10, `only ${files.length} .proto files found`);
    for (const file of files) {
      const t = scopes(readFileSync(file, "utf8"));
      for (const [text, scope] of t) {
        // A declaration keyword is never taken for a type or left plain (it may name a field:
        // `string service = 2;`).
        if (/^(message|service|enum|rpc)$/.test(text) && !/^(comment|string|variable\.other\.field)/.test(scope)) {
          assert.equal(scope, `keyword.other.${text}.proto`, `${path.relative(repoRoot, file)}: ${text} scoped ${scope}`);
        }
        assert.ok(!scope.startsWith("invalid"), `${path.relative(repoRoot, file)}: ${JSON.stringify(text)} scoped ${scope}`);
      }
    }
  });

  it("does not let an unterminated string colour the lines after it", () => {
    const t = scopes(`message A {
  string s = 1 [default = "oops];
  int32 n = 2;
}`);
    assert.equal(scopeOf(t, "int32"), "support.type.scalar.proto");
    assert.equal(scopeOf(t, "n"), "variable.other.field.proto");
  });
});
