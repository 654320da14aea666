// Bundles what the VS Code extension runs, with esbuild, from the TypeScript sources:
//   extension/dist/extension.cjs  the extension entry (CJS: VS Code loads it with require)
//   server/dist/server.js         the language server (ESM, run by node over IPC or stdio)
//   server/dist/grpcrouter.js     the grpcrouter CLI, for "Start Router" (when cli/ has one)
//   server/dist/ui/               the router dashboard's static files, which `serve` serves
//   server/dist/bin/buf           the buf compiler for the target platform (native)
// usage: node extension/scripts/build.mjs [--target linux-x64] [--sourcemap] [--minify]
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const args = process.argv.slice(2);
export const hostTarget = `${process.platform}-${process.arch}`;
const sourcemap = args.includes("--sourcemap");

// VS Code target names → the npm package that carries buf for it.
export const BUF_PACKAGES = {
  "linux-x64": "@bufbuild/buf-linux-x64",
  "linux-arm64": "@bufbuild/buf-linux-aarch64",
  "darwin-x64": "@bufbuild/buf-darwin-x64",
  "darwin-arm64": "@bufbuild/buf-darwin-arm64",
  "win32-x64": "@bufbuild/buf-win32-x64",
  "win32-arm64": "@bufbuild/buf-win32-arm64",
};

// An ESM bundle of CommonJS packages (vscode-languageserver) needs a real `require`.
const esmRequireBanner = 'import { createRequire as __grpcrouterCreateRequire } from "node:module"; const require = __grpcrouterCreateRequire(import.meta.url);';

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

/** The buf binary for a VS Code target, from its npm platform package. */
export function bufBinary(target = hostTarget) {
  const pkg = BUF_PACKAGES[target];
  if (!pkg) throw new Error(`build: no buf package for target ${target}; known: ${Object.keys(BUF_PACKAGES).join(", ")}`);
  let dir;
  try {
    dir = path.dirname(createRequire(path.join(root, "package.json")).resolve(`${pkg}/package.json`));
  } catch {
    throw new Error(`build: ${pkg} is not installed: npm install --no-save --force ${pkg}@<buf version> to build for ${target}`);
  }
  return path.join(dir, "bin", target.startsWith("win32") ? "buf.exe" : "buf");
}

function copyBuf(target, outRoot) {
  const from = bufBinary(target);
  const exe = path.basename(from);
  const binDir = path.join(outRoot, "server/dist/bin");
  mkdirSync(binDir, { recursive: true });
  for (const old of readdirSync(binDir)) if (old !== exe) console.warn(`build: stale ${old} in server/dist/bin`);
  copyFileSync(from, path.join(binDir, exe));
  chmodSync(path.join(binDir, exe), 0o755);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  build(args.includes("--target") ? args[args.indexOf("--target") + 1] : hostTarget, { minify: args.includes("--minify") }).catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
