// Regenerates TypeScript for grpcrouter's own protos (proto/grpcrouter/v1) with the real
// buf compiler and protoc-gen-es, as configured in buf.gen.yaml.
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import path from "node:path";
import platforms from "../generator/src/compiler/buf-platforms.json" with { type: "json" };

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const require = createRequire(path.join(root, "generator", "package.json"));
// buf's npm platform packages: one table for the generator and every build script.
const platformPackage = platforms[`${process.platform}-${process.arch}`];
const buf = path.join(path.dirname(require.resolve(`${platformPackage}/package.json`)), "bin", process.platform === "win32" ? "buf.exe" : "buf");
execFileSync(buf, ["generate"], { cwd: root, stdio: "inherit" });
