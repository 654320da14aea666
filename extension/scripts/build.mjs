// Bundles what the VS Code extension runs, with esbuild, from the TypeScript sources:
//   extension/dist/extension.cjs  the extension entry (CJS: VS Code loads it with require)
//   server/dist/server.js         the language server (ESM, run by node over IPC or stdio)
//   server/dist/grpcrouter.js     the grpcrouter CLI, for "Start Router" (when cli/ has one)
//   server/dist/bin/buf           the buf compiler for the target platform (native)
// usage: node extension/scripts/build.mjs [--target linux-x64] [--sourcemap]
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const args = process.argv.slice(2);
const target = args.includes("--target") ? args[args.indexOf("--target") + 1] : `${process.platform}-${process.arch}`;
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

const common = {
  bundle: true,
  platform: "node",
  target: "node20",
  // Workspaces export their TypeScript sources under "development": bundle from source.
  conditions: ["development"],
  sourcemap,
  logLevel: "warning",
  legalComments: "none",
};

/** The language server alone; tests bundle it into a folder of their own. */
export async function buildServer(outfile = path.join(root, "server/dist/server.js")) {
  await esbuild.build({
    ...common,
    entryPoints: [path.join(root, "server/src/main.ts")],
    outfile,
    format: "esm",
    banner: { js: esmRequireBanner },
  });
  return outfile;
}

export async function build() {
  const started = Date.now();
  await buildServer();
  await esbuild.build({
    ...common,
    entryPoints: [path.join(root, "extension/src/extension.ts")],
    outfile: path.join(root, "extension/dist/extension.cjs"),
    format: "cjs",
    external: ["vscode"],
  });
  const cliEntry = ["cli/src/main.ts", "cli/src/index.ts", "cli/src/grpcrouter.ts", "cli/src/cli.ts"].map((p) => path.join(root, p)).find(existsSync);
  if (cliEntry) {
    await esbuild.build({
      ...common,
      entryPoints: [cliEntry],
      outfile: path.join(root, "server/dist/grpcrouter.js"),
      format: "esm",
      banner: { js: esmRequireBanner },
    });
  } else {
    console.warn("build: no CLI entry in cli/src yet: 'Start Router' will report the CLI missing");
  }
  copyBuf(target);
  console.log(`build: extension, server${cliEntry ? ", cli" : ""} and buf (${target}) in ${Date.now() - started} ms`);
}

function copyBuf(target) {
  const pkg = BUF_PACKAGES[target];
  if (!pkg) throw new Error(`build: no buf package for target ${target}; known: ${Object.keys(BUF_PACKAGES).join(", ")}`);
  let dir;
  try {
    dir = path.dirname(createRequire(path.join(root, "package.json")).resolve(`${pkg}/package.json`));
  } catch {
    throw new Error(`build: ${pkg} is not installed: npm install --no-save --force ${pkg}@<buf version> to build for ${target}`);
  }
  const exe = target.startsWith("win32") ? "buf.exe" : "buf";
  const binDir = path.join(root, "server/dist/bin");
  mkdirSync(binDir, { recursive: true });
  for (const old of readdirSync(binDir)) if (old !== exe) console.warn(`build: stale ${old} in server/dist/bin`);
  copyFileSync(path.join(dir, "bin", exe), path.join(binDir, exe));
  chmodSync(path.join(binDir, exe), 0o755);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  build().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
