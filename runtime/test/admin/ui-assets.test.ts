// The embedded dashboard (what every bundle serves) must be the UI files as they are.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { it } from "node:test";
import { dashboardUiDir } from "../../src/admin/index.js";
import { DASHBOARD_ASSETS } from "../../src/admin/ui-assets.js";

it("ui-assets.ts matches src/admin/ui (else: npm run build:ui -w runtime)", () => {
  const dir = dashboardUiDir();
  const names = readdirSync(dir).filter((n) => /\.(html|css|js)$/.test(n)).sort();
  assert.deepEqual(Object.keys(DASHBOARD_ASSETS).sort(), names, "the same files; run npm run build:ui -w runtime");
  for (const n of names) assert.equal(DASHBOARD_ASSETS[n], readFileSync(path.join(dir, n), "utf8"), `${n} differs; run npm run build:ui -w runtime`);
});
