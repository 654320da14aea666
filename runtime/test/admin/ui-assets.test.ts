// The embedded dashboard (what every bundle serves) must be the UI files as they are, plus
// the vendored chart library, VS Code Elements and codicons built from their npm packages.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { it } from "node:test";
import { DASHBOARD_ASSETS } from "../../src/admin/ui-assets.js";
// @ts-expect-error: a plain .mjs build script without types
import { renderAssets } from "../../scripts/embed-ui.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));

it("ui-assets.ts is what embed-ui renders from src/admin/ui, uPlot, VS Code Elements and codicons (else: npm run build:ui -w runtime)", async () => {
  const file = readFileSync(path.join(here, "..", "..", "src", "admin", "ui-assets.ts"), "utf8");
  assert.equal(file, await (renderAssets as () => Promise<string>)(), "stale; run npm run build:ui -w runtime");
  assert.ok(DASHBOARD_ASSETS["uplot.js"]!.length > 10_000 && DASHBOARD_ASSETS["uplot.js"]!.length < 80_000, "uPlot is embedded, minified");
  assert.ok(DASHBOARD_ASSETS["uplot.css"]!.includes(".uplot"));
  assert.match(DASHBOARD_ASSETS["elements.js"]!, /customElements\.define\("vscode-button"|"vscode-button"/, "VS Code Elements are embedded");
  // The codicon font is cut to the icons the UI names: a few KB, not the whole 125 KB.
  const codicons = DASHBOARD_ASSETS["codicons.css"]!;
  assert.match(codicons, /\.codicon-debug-pause:before/);
  assert.doesNotMatch(codicons, /\.codicon-github:before/, "icons the UI does not use are left out");
  assert.ok(codicons.length < 30_000, `codicons.css is ${codicons.length} characters`);
});
