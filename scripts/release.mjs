// `npm run release -- --dry-run`: everything a release does except upload, on this machine.
//   1. versions agree everywhere (and with --tag vX.Y.Z, or $GITHUB_REF_NAME on a tag build)
//   2. the workflows pass actionlint
//   3. npm run pack: the npm tarballs and the VSIX (this platform's; --all: every platform's)
//   4. every VSIX holds its platform's buf (checked from the binary's header) and the version
//   5. the tarballs installed with plain npm into a fresh project: `grpcrouter --version`,
//      generate, a strict tsc, and a router and a bridge run from them (cli/test/user-project.ts,
//      the same steps as cli/test/install.test.ts)
//   6. the CLI inside this platform's VSIX generates with the buf it ships (no GRPCROUTER_BUF)
//   7. the VSIX installed into code-server (a real VS Code), which lists it at this version
// Publishing is the release workflow's job (.github/workflows/release.yml, on a tag): without
// --dry-run this script refuses.
//   usage: npm run release -- --dry-run [--all] [--out DIR] [--tag vX.Y.Z]
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { unzipSync } from "fflate";
import { hostTarget } from "../extension/scripts/build.mjs";
import { inspectVsix } from "../extension/scripts/package.mjs";
import { lintWorkflows } from "./lint-workflows.mjs";
import { packRelease, vsixTargets } from "./pack.mjs";
import { checkVersions } from "./release-versions.mjs";
import { installUserProject, registryUnreachable, run, runUserProgram, userEnv } from "../cli/test/user-project.ts";
import { codeServerPath } from "../extension/test/code-server.ts";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

async function main(argv) {
  if (!argv.includes("--dry-run")) {
    console.error("release: only --dry-run runs here; a release is a tag (vX.Y.Z) pushed to GitHub, which .github/workflows/release.yml publishes");
    return 2;
  }
  const opt = (name) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
  const tag = opt("--tag") ?? (process.env.GITHUB_REF_TYPE === "tag" ? process.env.GITHUB_REF_NAME : undefined);
  const targets = vsixTargets(argv.includes("--all"));
  const work = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-release-"));
  const out = opt("--out") ? path.resolve(opt("--out")) : path.join(work, "dist-release");
  const started = Date.now();
  const timings = [];
  const step = async (name, fn) => {
    const t0 = Date.now();
    process.stdout.write(`release: ${name} …\n`);
    const detail = await fn();
    timings.push([name, Date.now() - t0]);
    process.stdout.write(`release: ${name}: ok${detail ? ` (${detail})` : ""} in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  };
  try {
    let version = "";
    await step("versions", () => {
      const r = checkVersions({ tag });
      if (r.problems.length) throw new Error(r.problems.join("\n"));
      version = r.version;
      return `${version}${tag ? `, tag ${tag}` : ""}`;
    });
    await step("workflows (actionlint)", () => {
      const r = lintWorkflows();
      if (!r.ok) throw new Error(r.out);
    });
    let files = [];
    await step(`pack (${targets.join(", ")})`, async () => {
      files = await packRelease(out, targets);
      return out;
    });
    const tarballs = files.filter((f) => f.endsWith(".tgz"));
    const vsixes = files.filter((f) => f.endsWith(".vsix"));
    await step("VSIX contents", () => {
      const sizes = [];
      for (const target of targets) {
        const vsix = vsixes.find((f) => path.basename(f) === `grpcrouter-${target}-${version}.vsix`);
        if (!vsix) throw new Error(`no VSIX for ${target} in ${out}`);
        const v = inspectVsix(vsix);
        if (v.version !== version) throw new Error(`${path.basename(vsix)}: manifest version ${v.version}, expected ${version}`);
        if (v.bufTarget !== target) throw new Error(`${path.basename(vsix)}: its buf is built for ${v.bufTarget}`);
        sizes.push(`${target} ${(readFileSync(vsix).length / 1024 / 1024).toFixed(1)} MiB`);
      }
      const want = ["cli", "generator", "runtime"].map((p) => `grpcrouter-${p}-${version}.tgz`);
      const got = tarballs.map((f) => path.basename(f)).sort();
      if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`tarballs ${got.join(", ")}, expected ${want.join(", ")}`);
      return sizes.join(", ");
    });
    await step("install the tarballs into a fresh project; run a router and a bridge from them", async () => {
      const unreachable = await registryUnreachable(work);
      if (unreachable) throw new Error(unreachable);
      const app = path.join(work, "app");
      await installUserProject(app, tarballs);
      const npx = process.platform === "win32" ? "npx.cmd" : "npx";
      const v = await run(npx, ["--no-install", "grpcrouter", "--version"], app, 60_000);
      if (v.out.trim() !== `grpcrouter ${version}`) throw new Error(`installed grpcrouter --version says ${v.out.trim()}`);
      const answer = await runUserProgram(app);
      if (!/^answer: echo: hello from outside by user-1$/m.test(answer)) throw new Error(`the program's call failed:\n${answer}`);
      return answer.match(/^answer: .*$/m)[0];
    });
    const hostVsix = vsixes.find((f) => path.basename(f).includes(`-${hostTarget}-`));
    if (hostVsix) {
      await step("the CLI inside the VSIX, with the buf it ships", async () => {
        const dir = path.join(work, "vsix");
        for (const [name, bytes] of Object.entries(unzipSync(readFileSync(hostVsix)))) {
          if (name.endsWith("/")) continue;
          mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
          writeFileSync(path.join(dir, name), bytes, { mode: name.includes("/bin/") ? 0o755 : 0o644 });
        }
        const env = userEnv();
        delete env.GRPCROUTER_BUF;
        const cli = path.join(dir, "extension", "server", "dist", "grpcrouter.js");
        const gen = spawnSync(process.execPath, [cli, "generate", "--root", path.join(root, "examples/echo/proto"), "--out", path.join(work, "vsix-gen")], {
          cwd: work,
          env,
          encoding: "utf8",
          timeout: 120_000,
        });
        if (gen.status !== 0) throw new Error(`${gen.stdout}${gen.stderr}`);
        return gen.stdout.trim();
      });
      await step("install the VSIX into code-server", async () => {
        const bin = codeServerPath();
        const home = path.join(work, "code-server");
        const ext = ["--extensions-dir", path.join(home, "extensions"), "--user-data-dir", path.join(home, "data")];
        const env = { ...userEnv(), HOME: home };
        mkdirSync(home, { recursive: true });
        const inst = spawnSync(bin, ["--install-extension", hostVsix, ...ext], { env, encoding: "utf8", timeout: 180_000 });
        if (inst.status !== 0) throw new Error(`code-server --install-extension: ${inst.stdout}${inst.stderr}`);
        const list = spawnSync(bin, ["--list-extensions", "--show-versions", ...ext], { env, encoding: "utf8", timeout: 120_000 });
        const { name } = inspectVsix(hostVsix);
        if (!list.stdout.split("\n").includes(`${name}@${version}`))
          throw new Error(`code-server lists ${JSON.stringify(list.stdout.trim())}, not ${name}@${version}`);
        return `${name}@${version}`;
      });
    }
    console.log(`release: dry run of ${version} passed in ${((Date.now() - started) / 1000).toFixed(0)} s; files in ${out}`);
    return 0;
  } catch (e) {
    console.error(`release: ${timings.length ? `after ${timings.map(([n]) => n).join(", ")}: ` : ""}${e instanceof Error ? e.message : e}`);
    return 1;
  } finally {
    rmSync(path.join(work, "app"), { recursive: true, force: true });
    rmSync(path.join(work, "vsix"), { recursive: true, force: true });
    rmSync(path.join(work, "code-server"), { recursive: true, force: true });
    if (!opt("--out")) rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
