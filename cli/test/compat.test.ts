// The tunnel protocol's promise across releases (docs/versioning.md), tested: for every
// earlier release kept in test-fixtures/compat/<version>/ (an Echo router and bridge generated
// and built from that release's tarballs: scripts/release-compat-fixture.mjs), a bridge of
// this release registers with that release's router, and that release's bridge with a router
// of this release; calls of three kinds go through both ways.
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { cli, echoClient, echoSchemas, routerAddress, Running, startPlainEcho } from "./serve-helpers.js";
import { repoRoot } from "./run-cli.js";

const compatDir = path.join(repoRoot, "test-fixtures", "compat");
const releases = existsSync(compatDir)
  ? readdirSync(compatDir)
      .filter((d) => /^\d+\.\d+\.\d+/.test(d))
      .sort()
  : [];

/** A fixture program (`echo.mjs router|bridge …`) with its output kept. */
const fixtureProcess = (file: string, args: string[]) =>
  new Running([process.execPath, file, ...args], { stopSignal: "SIGTERM", stopGraceMs: 20_000, waitMs: 90_000 });

async function callsOfThreeKinds(router: string, schemas: Awaited<ReturnType<typeof echoSchemas>>, instanceId: string): Promise<void> {
  const client = echoClient(router, schemas);
  // Until the registration is live: the first call may come before the router has the instance.
  const deadline = Date.now() + 90_000;
  for (;;) {
    try {
      const { res } = await client.say("across releases", undefined, 10_000);
      assert.deepEqual(res, { $typeName: "demo.v1.SayResponse", text: "across releases", instanceId });
      break;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  const counted = await client.count("n", 3);
  assert.deepEqual(
    counted.map((m) => m.index),
    [1, 2, 3],
  );
  const chat = await client.chat(["a", "b"]);
  assert.deepEqual(
    chat.map((m) => m.text),
    ["a", "b"],
  );
}

describe("compatibility with earlier releases", { timeout: 300_000 }, () => {
  it("has the fixture of at least the first release", () => {
    assert.ok(releases.includes("0.1.0"), `test-fixtures/compat holds ${releases.join(", ") || "nothing"}`);
  });

  for (const release of releases) {
    describe(`release ${release}`, () => {
      const fixture = path.join(compatDir, release, "echo.mjs");
      let tmp: string;
      let schemas: Awaited<ReturnType<typeof echoSchemas>>;
      const running: Running[] = [];
      let plain: Awaited<ReturnType<typeof startPlainEcho>> | undefined;

      before(async () => {
        tmp = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-compat-"));
        // The module as that release generated it; this release's side reads the same protos.
        cpSync(path.join(compatDir, release, "proto"), path.join(tmp, "proto"), { recursive: true });
        schemas = await echoSchemas(path.join(tmp, "proto"));
      });
      after(async () => {
        for (const p of running.reverse()) await p.stop();
        await plain?.close();
        rmSync(tmp, { recursive: true, force: true });
      });

      it(`a bridge of this release serves through a ${release} router`, async () => {
        const oldRouter = fixtureProcess(fixture, ["router"]);
        running.push(oldRouter);
        const router = (await oldRouter.waitFor(/router listening on (\S+)/))[1]!;
        plain = await startPlainEcho(schemas, "this-release");
        running.push(cli(["bridge", "--root", "proto", "--target", plain.address, "--router", router], tmp));
        await callsOfThreeKinds(router, schemas, "this-release");
      });

      it(`a ${release} bridge serves through a router of this release`, async () => {
        const serve = cli(["serve", "--root", "proto", "--port", "0", "--no-dashboard", "--no-watch"], tmp);
        running.push(serve);
        const router = await routerAddress(serve);
        const oldBridge = fixtureProcess(fixture, ["bridge", router]);
        running.push(oldBridge);
        await oldBridge.waitFor(/bridge registered/);
        await callsOfThreeKinds(router, schemas, `release-${release}`);
      });
    });
  }
});
