// Regenerates TypeScript for grpcrouter's own protos (proto/grpcrouter/v1) with the real
// buf compiler and protoc-gen-es, as configured in buf.gen.yaml.
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import path from "node:path";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const require = createRequire(path.join(root, "generator", "package.json"));
const platformPackage = {
  "linux-x64": "@bufbuild/buf-linux-x64",
  "linux-arm64": "@bufbuild/buf-linux-aarch64",
  "darwin-x64": "@bufbuild/buf-darwin-x64",
  "darwin-arm64": "@bufbuild/buf-darwin-arm64",
  "win32-x64": "@bufbuild/buf-win32-x64",
  "win32-arm64": "@bufbuild/buf-win32-arm64",
}[`${process.platform}-${process.arch}`];
const buf = path.join(path.dirname(require.resolve(`${platformPackage}/package.json`)), "bin", process.platform === "win32" ? "buf.exe" : "buf");
execFileSync(buf, ["generate"], { cwd: root, stdio: "inherit" });
