// Regenerates ../gen from the protos here (grpc.health.v1, grpc.reflection.v1) with buf and
// protoc-gen-es; the output is committed. Run: npm run build:discovery-protos -w runtime
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../../../..");
const require = createRequire(path.join(repo, "generator", "package.json"));
const arch = process.arch === "arm64" && process.platform === "linux" ? "aarch64" : process.arch;
const buf = path.join(
  path.dirname(require.resolve(`@bufbuild/buf-${process.platform}-${arch}/package.json`)),
  "bin",
  process.platform === "win32" ? "buf.exe" : "buf",
);
const template = {
  version: "v2",
  plugins: [{ local: path.join(repo, "node_modules/.bin/protoc-gen-es"), out: path.join(here, "..", "gen"), opt: ["target=ts", "import_extension=js"] }],
};
execFileSync(buf, ["generate", here, "--template", JSON.stringify(template)], { cwd: repo, stdio: "inherit" });
