// Phase 1's router protos are real protobuf: buf compiles the printed text next to the
// module's files, and the descriptor buf builds from it equals the one phase 1 handed to
// protoc-gen-es (so the text on disk and the generated TypeScript cannot disagree).
import assert from "node:assert/strict";
import { test } from "node:test";
import { clone, fromBinary, toJson } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import { strToU8, zipSync } from "fflate";
import { runBuf } from "../src/compiler/buf.js";
import { buildRouterProtos, formatDiagnostic } from "../src/index.js";
import { cleanCases, generateFixture, tempDir } from "./support/fixtures.js";

function comparable(d: FileDescriptorProto) {
  const c = clone(FileDescriptorProtoSchema, d);
  c.sourceCodeInfo = undefined;
  return toJson(FileDescriptorProtoSchema, c);
}

for (const c of cleanCases) {
  test(`${c.name}: router protos compile with buf to the descriptors phase 1 built`, async () => {
    const out = tempDir();
    try {
      const r = await generateFixture(c.root, out.dir);
      assert.deepEqual(r.diagnostics.map(formatDiagnostic), []);
      const compiled = r.compiled;
      const routerProtos = buildRouterProtos({ registry: compiled.registry!, files: compiled.files });
      assert.ok(routerProtos.protos.length > 0);
      const zip: Record<string, Uint8Array> = {};
      for (const [name, text] of compiled.sources) zip[name] = strToU8(text);
      for (const f of r.files) if (f.path.endsWith("_router.proto")) zip[f.path] = strToU8(f.content);
      const b = await runBuf(["build", "-#format=zip", "--error-format=json", "--output", "-#format=binpb"], { input: zipSync(zip, { level: 0 }) });
      assert.equal(b.stderr, "", "buf compiles the router protos without errors or warnings");
      assert.equal(b.status, 0);
      const built = new Map(fromBinary(FileDescriptorSetSchema, b.stdout).file.map((f) => [f.name, f]));
      for (const p of routerProtos.protos) {
        const fromText = built.get(p.path);
        assert.ok(fromText, `${p.path} is in buf's output`);
        assert.deepEqual(comparable(fromText), comparable(p.descriptor), `${p.path}: printed text and descriptor agree`);
      }
    } finally {
      out.remove();
    }
  });
}
