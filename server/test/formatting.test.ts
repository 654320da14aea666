// The guard that keeps buf format from mangling a file with a syntax error, with the real buf.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { bufFormat, firstLostToken } from "../src/features/formatting.js";

describe("buf format guard", () => {
  it("accepts what buf does to a good file: spacing, sorted imports, empty statements", async () => {
    const text = 'syntax = "proto3";\nimport "z/z.proto";\nimport "a/a.proto";\nmessage  A {   string  b=1;};\n';
    const r = await bufFormat(text);
    assert.ok("text" in r, JSON.stringify(r));
    assert.ok(r.text.indexOf("a/a.proto") < r.text.indexOf("z/z.proto"), r.text);
    assert.equal(firstLostToken(text, r.text), undefined);
  });

  it("refuses what buf does to a broken file, naming the line", async () => {
    const r = await bufFormat('syntax = "proto3";\nmessage A {\n  string b = ;\n}\n');
    assert.ok("reason" in r, JSON.stringify(r));
    assert.match(r.reason, /`=` at line 3/);
  });

  it("notices an import buf would drop", () => {
    assert.match(firstLostToken('import "a.proto";\nimport "b.proto";\n', 'import "a.proto";\n') ?? "", /imports/);
  });
});
