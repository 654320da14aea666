// Bundles the CLI into dist/grpcrouter.js (ESM, node20). Our workspace packages are bundled
// from their sources; npm packages stay external and load from node_modules at run time, which
// is also where the buf binary is found (@bufbuild/buf-<platform>).
import { build } from "esbuild";
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
await build({
  entryPoints: [path.join(here, "..", "src", "main.ts")],
  outfile: path.join(here, "..", "dist", "grpcrouter.js"),
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  conditions: ["development"],
  plugins: [externalNpm],
  sourcemap: true,
  logLevel: "warning",
});
