// Bundles the CLI into dist/grpcrouter.js (ESM, node20). Our workspace packages are bundled
// from their sources; npm packages stay external and load from node_modules at run time, which
// is also where the buf binary is found (@bufbuild/buf-<platform>).
import { build } from "esbuild";
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const externalNpm = {
  name: "external-npm",
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.path.startsWith("@grpcrouter/") || args.path.startsWith("node:")) return undefined;
      return { path: args.path, external: true };
    });
  },
};
const result = await build({
  entryPoints: [path.join(here, "..", "src", "main.ts")],
  outfile: path.join(here, "..", "dist", "grpcrouter.js"),
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  conditions: ["@grpcrouter/source"],
  plugins: [externalNpm],
  sourcemap: true,
  logLevel: "warning",
  write: false,
});
// Written to a temporary name and renamed into place: tests build the bundle while others may
// be running it, and a half-written file must never be what they load.
for (const file of result.outputFiles) {
  mkdirSync(path.dirname(file.path), { recursive: true });
  const tmp = `${file.path}.${process.pid}.tmp`;
  writeFileSync(tmp, file.contents, { mode: file.path.endsWith(".js") ? 0o755 : 0o644 });
  renameSync(tmp, file.path);
}
