// Renders an SVG to a PNG in Debian's chromium (the Marketplace takes only PNG icons and
// README images): how extension/media/icon.png is made from icon.svg.
//   usage: node extension/scripts/render-icon.mjs extension/media/icon.svg extension/media/icon.png 256
import { chromium } from "playwright-core";
import { readFileSync } from "node:fs";
const [svg, out, size] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium" });
const page = await browser.newPage({ viewport: { width: +size, height: +size }, deviceScaleFactor: 1 });
await page.setContent(
  `<html><body style="margin:0;background:transparent">${readFileSync(svg, "utf8").replace(/width="128" height="128"/, `width="${size}" height="${size}"`)}</body></html>`,
);
await page.locator("svg").screenshot({ path: out, omitBackground: true });
await browser.close();
