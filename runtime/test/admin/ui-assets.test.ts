// The embedded dashboard (what every bundle serves) must be the UI files as they are, plus
// the vendored chart library built from its npm package.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { it } from "node:test";
import { DASHBOARD_ASSETS } from "../../src/admin/ui-assets.js";
// @ts-expect-error: a plain .mjs build script without types
import { renderAssets } from "../../scripts/embed-ui.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));

it("ui-assets.ts is what embed-ui renders from src/admin/ui and uPlot (else: npm run build:ui -w runtime)", () => {
  const file = readFileSync(path.join(here, "..", "..", "src", "admin", "ui-assets.ts"), "utf8");
  assert.equal(file, (renderAssets as () => string)(), "stale; run npm run build:ui -w runtime");
  assert.ok(DASHBOARD_ASSETS["uplot.js"]!.length > 10_000 && DASHBOARD_ASSETS["uplot.js"]!.length < 80_000, "uPlot is embedded, minified");
  assert.ok(DASHBOARD_ASSETS["uplot.css"]!.includes(".uplot"));
});
