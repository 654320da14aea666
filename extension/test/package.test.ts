// What the Marketplace and a user get from `npm run package`: a VSIX per platform with that
// platform's buf (read from the binary's header), the extension's own README whose screenshots
// ship inside as PNGs, icon, CHANGELOG, repository and honest categories; and, in a real VS
// Code (code-server), a status bar item only where there are .proto files.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { unzipSync } from "fflate";
import { spawnSync } from "node:child_process";
import { buildVsix, openQuickInput, repeatUntilShown, repoRoot, stagedExtension, Workbench } from "./code-server.js";

interface Packager {
  TARGETS: string[];
  buildVsix(target: string, out: string): Promise<string>;
  inspectVsix(file: string): { version: string; name: string; bufTarget: string };
}

/** The VSIX's entries (under extension/), read without inflating buf. */
function entries(vsix: string): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = {};
  const all = unzipSync(readFileSync(vsix), { filter: (f) => !f.name.includes("/bin/") });
  for (const [name, bytes] of Object.entries(all)) if (name.startsWith("extension/")) out[name.slice("extension/".length)] = bytes;
  return out;
}
const text = (b: Uint8Array | undefined) => Buffer.from(b ?? new Uint8Array()).toString("utf8");
const isPng = (b: Uint8Array | undefined) => !!b && Buffer.from(b.subarray(0, 8)).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));

describe("the VSIX", { timeout: 10 * 60_000 }, () => {
  let tmp: string;
  let packager: Packager;
  let vsix: string;
  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-package-"));
    packager = (await import(pathToFileURL(path.join(repoRoot, "extension/scripts/package.mjs")).href)) as Packager;
    vsix = await buildVsix(tmp);
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it("is built for every platform buf ships for", () => {
    assert.deepEqual(packager.TARGETS, ["linux-x64", "linux-arm64", "darwin-x64", "darwin-arm64", "win32-x64", "win32-arm64"]);
  });

  it("shows the extension's own page: short README, screenshots inside as PNG, icon, CHANGELOG", () => {
    const files = entries(vsix);
    const manifest = JSON.parse(text(files["package.json"])) as Record<string, unknown> & {
      version: string;
      icon: string;
      categories: string[];
      repository: { url: string };
    };
    // vsce stores the README and CHANGELOG under lower-case names.
    const readme = text(files["readme.md"] ?? files["README.md"]);
    assert.match(readme, /^# gRPC Router for VS Code\n/);
    assert.ok(readme.length < 8000, `the Marketplace README is ${readme.length} characters`);
    // Screenshots: linked at this version's tag for the Marketplace page, and shipped inside.
    const images = [...readme.matchAll(/!\[[^\]]*\]\(([^)]+)\)/g)].map((m) => m[1]!);
    assert.ok(images.length >= 2, `README images: ${images.join(", ")}`);
    const base = `${manifest.repository.url.replace(/\.git$/, "")}/raw/v${manifest.version}/extension/`;
    for (const url of images) {
      assert.ok(url.startsWith(base), `${url} is not under ${base}`);
      const inside = url.slice(base.length);
      assert.ok(inside.endsWith(".png") && isPng(files[inside]), `${inside} is not a PNG in the VSIX`);
    }
    assert.ok(isPng(files[manifest.icon]), `icon ${manifest.icon} is not a PNG in the VSIX`);
    assert.match(text(files["changelog.md"] ?? files["CHANGELOG.md"]), new RegExp(`^## ${manifest.version.replace(/\./g, "\\.")} `, "m"));
    assert.match(manifest.repository.url, /^https:\/\/github\.com\/[^/]+\/[^/]+\.git$/);
    assert.ok(manifest.categories.includes("Debuggers"), `categories: ${manifest.categories.join(", ")}`);
  });

  it("holds a CLI that finds the buf beside it, with no GRPCROUTER_BUF and no node_modules", () => {
    // The staged tree is what the VSIX holds, unpacked.
    const cli = path.join(stagedExtension(tmp), "server/dist/grpcrouter.js");
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: tmp };
    const r = spawnSync(process.execPath, [cli, "generate", "--root", path.join(repoRoot, "examples/echo/proto"), "--out", path.join(tmp, "gen")], {
      cwd: tmp,
      env,
      encoding: "utf8",
      timeout: 120_000,
    });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /^grpcrouter: \d+ written, 0 unchanged, 0 removed in gen \(\d+ ms\)$/m);
  });

  it("holds buf for its own platform: another platform's VSIX, fetched with npm pack", async () => {
    const other = await packager.buildVsix("win32-arm64", tmp);
    const v = packager.inspectVsix(other);
    assert.equal(path.basename(other), `grpcrouter-win32-arm64-${v.version}.vsix`);
    assert.equal(v.bufTarget, "win32-arm64");
    assert.equal(packager.inspectVsix(vsix).bufTarget, "linux-x64");
    // Only its own buf: never another target's binary beside it.
    const names: string[] = [];
    unzipSync(readFileSync(other), { filter: (f) => (names.push(f.name), false) });
    assert.deepEqual(
      names.filter((n) => n.includes("/bin/")),
      ["extension/server/dist/bin/buf.exe"],
    );
  });
});

describe("the status bar item in a real VS Code", { timeout: 10 * 60_000 }, () => {
  let tmp: string;
  let folder: string;
  const workbench = new Workbench("package");
  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-statusbar-"));
    folder = path.join(tmp, "no-protos");
    mkdirSync(folder);
    writeFileSync(path.join(folder, "notes.md"), "# not a proto module\n");
    await workbench.open({
      vsix: await buildVsix(tmp),
      folder,
      settings: { "workbench.startupEditor": "none", "telemetry.telemetryLevel": "off", "security.workspace.trust.enabled": false },
    });
  });
  after(async () => {
    await workbench.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it("is hidden in a workspace without .proto files, appears when one is created, goes with it", () => workbench.step("status bar", statusBarWalk));

  async function statusBarWalk(): Promise<void> {
    const { page } = workbench;
    // Activate the extension the way a user in this folder would: one of its commands.
    // The palette lists what was registered when it opened: until the extension host has read
    // our manifest, close it and open it again.
    const row = page.locator(".quick-input-list .monaco-list-row", { hasText: "gRPC Router: Show Output" }).first();
    await repeatUntilShown(row, "gRPC Router: Show Output in the palette", async () => (await openQuickInput(page, "F1")).fill(">gRPC Router: Show Output"), {
      between: () => page.keyboard.press("Escape"),
    });
    await page.keyboard.press("Enter");
    // Activated: its output channel is the one shown.
    await page.locator(".part.panel .monaco-select-box", { hasText: "gRPC Router" }).first().waitFor({ state: "attached" });
    const item = page.locator('.statusbar-item[id$="grpcrouter.router"]');
    // The workspace scan has answered once the language server runs; then the item stays away.
    await page.locator(".statusbar").waitFor();
    assert.equal(await item.count(), 0, "no router item in a folder without .proto files");
    writeFileSync(path.join(folder, "hello.proto"), 'syntax = "proto3";\npackage hello.v1;\nmessage Hi {}\n');
    await item.filter({ hasText: "Router: stopped" }).waitFor();
    // And away again when the last one goes.
    rmSync(path.join(folder, "hello.proto"));
    await item.waitFor({ state: "detached" });
  }
});
