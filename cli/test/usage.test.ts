// --help, --version, and every way of calling the CLI wrongly: one clear line each.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { repoRoot, runCli } from "./run-cli.js";

const cwd = repoRoot;

test("--help lists the commands; <command> --help shows its options", async () => {
  const top = await runCli(["--help"], cwd);
  assert.equal(top.code, 0);
  assert.match(top.stdout, /^usage: grpcrouter <command> \[options\]/);
  assert.match(top.stdout, /^ {2}generate +generate router protos and TypeScript from a proto module$/m);
  assert.match(top.stdout, /^ {2}check +exit 1 when the generated output is missing or out of date$/m);
  const gen = await runCli(["generate", "--help"], cwd);
  assert.equal(gen.code, 0);
  assert.match(gen.stdout, /^usage: grpcrouter generate \[--root DIR\] \[--out DIR\]$/m);
  assert.match(gen.stdout, /--out DIR +the output folder \(default: gen\)/);
});

test("--version prints the version of cli/package.json", async () => {
  const r = await runCli(["--version"], cwd);
  const pkg = JSON.parse(readFileSync(path.join(repoRoot, "cli", "package.json"), "utf8")) as { version: string };
  assert.deepEqual(r, { code: 0, stdout: `grpcrouter ${pkg.version}\n`, stderr: "" });
});

test("unknown flag, unknown command, missing folder, no command: one line and exit 2", async () => {
  const [flag, command, folder, none] = await Promise.all([
    runCli(["generate", "--bogus"], cwd),
    runCli(["frobnicate"], cwd),
    runCli(["check", "--root", "no/such/folder"], cwd),
    runCli([], cwd),
  ]);
  assert.equal(flag.code, 2);
  assert.equal(flag.stdout, "");
  assert.match(flag.stderr, /^grpcrouter generate: Unknown option '--bogus'.* \(usage: grpcrouter generate \[--root DIR\] \[--out DIR\]\)\n$/);
  assert.equal(command.code, 2);
  assert.match(command.stderr, /^grpcrouter: unknown command "frobnicate" \(commands: generate, check.*; see grpcrouter --help\)\n$/);
  assert.equal(folder.code, 2);
  assert.equal(
    folder.stderr,
    `grpcrouter check: --root no/such/folder: no such folder (${path.join(repoRoot, "no/such/folder")}) (usage: grpcrouter check [--root DIR] [--out DIR])\n`,
  );
  assert.equal(none.code, 2);
  assert.match(none.stdout, /^usage: grpcrouter <command>/);
});

test("bridge: a bad --health-interval or --dns-refresh is a usage error before the module is loaded or anything dialled", async () => {
  const base = ["bridge", "--root", "cli/test", "--router", "127.0.0.1:1", "--target", "127.0.0.1:2"];
  const [health, refresh] = await Promise.all([runCli([...base, "--health-interval", "soon"], cwd), runCli([...base, "--dns-refresh", "0"], cwd)]);
  assert.equal(health.code, 2);
  assert.match(health.stderr, /--health-interval soon: expected a number of seconds/);
  assert.equal(refresh.code, 2);
  assert.match(refresh.stderr, /--dns-refresh 0: expected a number of seconds/);
});
