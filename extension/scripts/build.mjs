// Bundles what the VS Code extension runs, with esbuild, from the TypeScript sources:
//   extension/dist/extension.cjs  the extension entry (CJS: VS Code loads it with require)
//   server/dist/server.js         the language server (ESM, run by node over IPC or stdio)
//   server/dist/grpcrouter.js     the grpcrouter CLI, for "Start Router" (when cli/ has one)
//   server/dist/ui/               the router dashboard's static files, which `serve` serves
//   server/dist/bin/buf           the buf compiler for the target platform (native)
// usage: node extension/scripts/build.mjs [--target linux-x64] [--sourcemap] [--minify]
//        node extension/scripts/build.mjs --standalone-cli DIR   (the container image's CLI:
//        DIR/grpcrouter.js, DIR/ui/, DIR/bin/buf for this machine)
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import bufPlatforms from "../../generator/src/compiler/buf-platforms.json" with { type: "json" };

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const args = process.argv.slice(2);
export const hostTarget = `${process.platform}-${process.arch}`;
const sourcemap = args.includes("--sourcemap");

// VS Code target names → the npm package that carries buf for it (the generator's table).
export const BUF_PACKAGES = bufPlatforms;

// An ESM bundle of CommonJS packages (vscode-languageserver) needs a real `require`.
const esmRequireBanner =
  'import { createRequire as __grpcrouterCreateRequire } from "node:module"; const require = __grpcrouterCreateRequire(import.meta.url);';

// @bufbuild/protoplugin imports the TypeScript compiler only to transpile plugin output to
// .js/.d.ts; grpcrouter emits .ts alone, so the 9 MB compiler stays out of the bundle. Should
// a code path ever reach it, it says so instead of failing obscurely.
const withoutTypescript = {
  name: "without-typescript",
  setup(b) {
    b.onResolve({ filter: /^typescript$/ }, () => ({ path: "typescript", namespace: "without-typescript" }));
    b.onLoad({ filter: /.*/, namespace: "without-typescript" }, () => ({
      contents:
        'const fail = () => { throw new Error("grpcrouter bundle: the TypeScript compiler is not included (only .ts output is supported)"); };\n' +
        "export default new Proxy({}, { get: fail });",
      loader: "js",
    }));
  },
};

const common = {
  plugins: [withoutTypescript],
  bundle: true,
  platform: "node",
  target: "node20",
  // Workspaces export their TypeScript sources under "@grpcrouter/source": bundle from source.
  conditions: ["@grpcrouter/source"],
  sourcemap,
  logLevel: "warning",
  legalComments: "none",
};

/** The language server alone; tests bundle it into a folder of their own. */
export async function buildServer(outfile = path.join(root, "server/dist/server.js"), { minify = false, sourcemap: map = sourcemap } = {}) {
  await esbuild.build({
    ...common,
    minify,
    sourcemap: map,
    entryPoints: [path.join(root, "server/src/main.ts")],
    outfile,
    format: "esm",
    banner: { js: esmRequireBanner },
  });
  return outfile;
}

/**
 * The grpcrouter CLI as ONE file with every npm package inside (unlike cli/dist/grpcrouter.js,
 * which loads them from node_modules): the VSIX has no node_modules. Returns the entry bundled,
 * or undefined when cli/ has none.
 */
export async function buildCli(outfile = path.join(root, "server/dist/grpcrouter.js"), { minify = false } = {}) {
  const cliEntry = ["cli/src/main.ts"].map((p) => path.join(root, p)).find(existsSync);
  if (!cliEntry) return undefined;
  await esbuild.build({
    ...common,
    entryPoints: [cliEntry],
    outfile,
    minify,
    format: "esm",
    banner: { js: esmRequireBanner },
  });
  // `serve` runs the router's web dashboard; a bundle finds its static UI in ui/ beside it.
  const ui = path.join(root, "runtime/src/admin/ui");
  if (existsSync(ui)) cpSync(ui, path.join(path.dirname(outfile), "ui"), { recursive: true });
  return cliEntry;
}

/**
 * Builds everything the VSIX holds, for a VS Code target (`linux-x64`, …), under `outRoot`
 * (default: the repo, where VS Code's extension development host and `npm run package` find
 * it; tests build into a folder of their own so that parallel runs never share files).
 */
export async function build(target = hostTarget, { minify = false, outRoot = root } = {}) {
  const started = Date.now();
  await buildServer(path.join(outRoot, "server/dist/server.js"), { minify });
  await esbuild.build({
    ...common,
    minify,
    entryPoints: [path.join(root, "extension/src/extension.ts")],
    outfile: path.join(outRoot, "extension/dist/extension.cjs"),
    format: "cjs",
    external: ["vscode"],
  });
  const cliEntry = await buildCli(path.join(outRoot, "server/dist/grpcrouter.js"), { minify });
  if (!cliEntry) console.warn("build: no CLI entry in cli/src yet: 'Start Router' will report the CLI missing");
  copyBuf(target, outRoot);
  console.log(`build: extension, server${cliEntry ? ", cli" : ""} and buf (${target}) in ${Date.now() - started} ms`);
}

/**
 * The buf binary for a VS Code target. The host's platform package is in node_modules; npm
 * refuses to install the others (their os/cpu fields), so those are fetched with `npm pack`
 * from the registry, at the exact version @bufbuild/buf pins, into node_modules/.cache.
 */
export function bufBinary(target = hostTarget) {
  const pkg = BUF_PACKAGES[target];
  if (!pkg) throw new Error(`build: no buf package for target ${target}; known: ${Object.keys(BUF_PACKAGES).join(", ")}`);
  const exe = target.startsWith("win32") ? "buf.exe" : "buf";
  const require = createRequire(path.join(root, "package.json"));
  try {
    return path.join(path.dirname(require.resolve(`${pkg}/package.json`)), "bin", exe);
  } catch {
    // not installed: this is another platform's package
  }
  const version = JSON.parse(readFileSync(require.resolve("@bufbuild/buf/package.json"), "utf8")).optionalDependencies?.[pkg];
  if (!version) throw new Error(`build: @bufbuild/buf names no ${pkg}; cannot build for ${target}`);
  const dir = path.join(root, "node_modules", ".cache", "grpcrouter-buf", `${pkg.replace("/", "+")}@${version}`);
  const bin = path.join(dir, "package", "bin", exe);
  if (!existsSync(bin)) fetchPackage(`${pkg}@${version}`, dir);
  if (!existsSync(bin)) throw new Error(`build: ${pkg}@${version} has no bin/${exe}`);
  return bin;
}

/** `npm pack SPEC` unpacked into `dir/package` (written beside and renamed: parallel builds). */
function fetchPackage(spec, dir) {
  const tmp = `${dir}.${process.pid}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  const packed = spawnSync(npm, ["pack", spec, "--silent", "--pack-destination", tmp], { cwd: tmp, encoding: "utf8", shell: process.platform === "win32" });
  if (packed.status !== 0) throw new Error(`build: npm pack ${spec} failed: ${packed.stderr || packed.stdout}`);
  const tgz = packed.stdout.trim().split("\n").pop();
  const untar = spawnSync("tar", ["-xzf", tgz, "-C", tmp], { cwd: tmp, encoding: "utf8" });
  if (untar.status !== 0) throw new Error(`build: tar -xzf ${tgz} failed: ${untar.stderr}`);
  rmSync(path.join(tmp, tgz));
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
}

/**
 * The CLI alone, self-contained (no node_modules): `dir/grpcrouter.js`, the dashboard's
 * `dir/ui/` and `dir/bin/buf`, where the CLI finds buf by itself. The container image runs it.
 */
export async function buildStandaloneCli(dir, target = hostTarget, { minify = true } = {}) {
  const entry = await buildCli(path.join(dir, "grpcrouter.js"), { minify });
  if (!entry) throw new Error("build: no CLI entry in cli/src");
  copyBuf(target, dir, "bin");
  return path.join(dir, "grpcrouter.js");
}

function copyBuf(target, outRoot, binSubdir = "server/dist/bin") {
  const from = bufBinary(target);
  const exe = path.basename(from);
  const binDir = path.join(outRoot, binSubdir);
  mkdirSync(binDir, { recursive: true });
  for (const old of readdirSync(binDir)) if (old !== exe) console.warn(`build: stale ${old} in server/dist/bin`);
  copyFileSync(from, path.join(binDir, exe));
  chmodSync(path.join(binDir, exe), 0o755);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1]) && args.includes("--standalone-cli")) {
  const dir = path.resolve(args[args.indexOf("--standalone-cli") + 1] ?? "");
  buildStandaloneCli(dir).then(
    (cli) => console.log(`build: ${cli} with ui/ and bin/ beside it`),
    (e) => {
      console.error(e instanceof Error ? e.message : e);
      process.exit(1);
    },
  );
} else if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  build(args.includes("--target") ? args[args.indexOf("--target") + 1] : hostTarget, { minify: args.includes("--minify") }).catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
