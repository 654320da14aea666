// Positions of the last good compile mapped onto the buffer as it is now.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PositionMap } from "../src/analysis/position-map.js";
import { blankLines } from "../src/analysis/recover-index.js";

const r = (l1: number, c1: number, l2: number, c2: number) => ({ start: { line: l1, character: c1 }, end: { line: l2, character: c2 } });

describe("PositionMap", () => {
  const before = ['syntax = "proto3";', "", "message Customer {", "  string id = 1;", "}", "", "message Order {", "  Customer c = 1;", "}"].join("\n");

  it("moves names and elements down by the lines inserted above them", () => {
    const after = before.replace("message Customer {", "// a\n// b\n// c\nmessage Customer {");
    const m = PositionMap.between(before, after);
    assert.deepEqual(m.mapName(r(2, 8, 2, 16), "Customer"), r(5, 8, 5, 16));
    assert.deepEqual(m.mapRange(r(2, 0, 4, 1)), r(5, 0, 7, 1));
    assert.deepEqual(m.mapName(r(6, 8, 6, 13), "Order"), r(9, 8, 9, 13));
  });

  it("finds a name again on a line that was edited", () => {
    const after = before.replace("message Customer {", "message   Customer { // typing");
    const m = PositionMap.between(before, after);
    assert.deepEqual(m.mapName(r(2, 8, 2, 16), "Customer"), r(2, 10, 2, 18));
  });

  it("drops the name of a declaration whose line is gone, and shrinks its element", () => {
    const after = before.replace("  string id = 1;\n", "");
    const m = PositionMap.between(before, after);
    assert.equal(m.mapName(r(3, 9, 3, 11), "id"), undefined);
    assert.deepEqual(m.mapRange(r(2, 0, 4, 1)), r(2, 0, 3, 1));
    assert.deepEqual(m.mapName(r(6, 8, 6, 13), "Order"), r(5, 8, 5, 13));
  });

  it("blanks error lines and keeps every other line where it was", () => {
    assert.equal(blankLines("a\nb = ;\nc", new Set([1])), "a\n\nc");
  });
});
