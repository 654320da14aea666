// Phases 3 and 4: `<name>_router.ts` and `<name>_bridge.ts` for every service of every file,
// with the router proto's field numbers, typed hooks only where a request exists, and
// collision-free names. (Their type-checking against the runtime is in typecheck.test.ts,
// through the goldens.)
import assert from "node:assert/strict";
import { test } from "node:test";
import { formatDiagnostic, generate, type OutputFile } from "../src/index.js";
import { fixturesDir, tempDir } from "./support/fixtures.js";
import path from "node:path";

async function withTunnelCode(root: string) {
  const out = tempDir();
  try {
    const r = await generate({ root: path.join(fixturesDir, root), out: out.dir, tunnelCode: true });
    assert.deepEqual(r.diagnostics.map(formatDiagnostic), []);
    return { plan: r.plan!, files: new Map(r.files.map((f: OutputFile) => [f.path, f.content])) };
  } finally {
    out.remove();
  }
}

/** The `{ Name: 16, ... }` table of `export const <tunnel> = defineTunnel(...)`. */
function tunnelTable(ts: string, tunnel: string): { routerService: string; fields: Record<string, number> } {
  const m = new RegExp(`export const ${tunnel} = defineTunnel\\(\\w+, "([\\w.]+)", \\{\\n([^}]*)\\}\\);`).exec(ts);
  assert.ok(m, `${tunnel} is defined`);
  const fields: Record<string, number> = {};
  for (const line of m[2]!.trim().split("\n")) {
    const [, k, v] = /^\s*"?([\w]+)"?: (\d+),$/.exec(line)!;
    fields[k!] = Number(v);
  }
  return { routerService: m[1]!, fields };
}

test("every service of every file gets a tunnel with the router proto's numbers, a router and a bridge", async () => {
  const { plan, files } = await withTunnelCode("naming/proto");
  const router = files.get("acme/shop/v1/shop_router.ts")!;
  const bridge = files.get("acme/shop/v1/shop_bridge.ts")!;
  assert.ok(router && bridge);
  for (const [service, tunnel] of [
    ["acme.shop.v1.Shop", "ShopTunnel"],
    ["acme.shop.v1.Admin", "AdminTunnel"],
  ] as const) {
    const sp = plan.services.get(service)!;
    const t = tunnelTable(router, tunnel);
    assert.equal(t.routerService, sp.routerService);
    assert.deepEqual(t.fields, Object.fromEntries(sp.methods.map((m) => [m.name, m.fieldNumber])));
  }
  assert.match(router, /^export function createShopRouter\(options: ShopRouterOptions = \{\}\): Router \{$/m);
  assert.match(router, /^export function createAdminRouter\(options: AdminRouterOptions = \{\}\): Router \{$/m);
  assert.match(bridge, /^export function createShopBridge\(impl: Partial<ServiceImpl<typeof Shop>>, options: ConnectBridgeOptions\): Bridge \{$/m);
  assert.match(bridge, /^export function createAdminBridge\(impl: Partial<ServiceImpl<typeof Admin>>, options: ConnectBridgeOptions\): Bridge \{$/m);
  assert.match(bridge, /^import \{ AdminTunnel, ShopTunnel \} from "\.\/shop_router\.js";$/m);
  // No file without services gets either.
  assert.equal(files.has("acme/common/v1/types_router.ts"), false);
  assert.equal(files.has("acme/common/v1/types_bridge.ts"), false);
});

test("TypeScript names never collide: a service named like a runtime type, two services differing in case", async () => {
  const { files } = await withTunnelCode("naming/proto");
  const router = files.get("acme/shop/v1/cases_router.ts")!;
  assert.match(router, /^import type \{ Router as Router\$1, /m, "the runtime's Router is aliased, the service keeps its name");
  assert.match(router, /^export const RouterTunnel = defineTunnel\(Router, "acme\.shop\.v1\.RouterRouter"/m);
  assert.match(router, /^export const Router2Tunnel = defineTunnel\(router, "acme\.shop\.v1\.routerRouter"/m);
  assert.match(router, /^export function createRouter2Router\(options: Router2RouterOptions = \{\}\): Router\$1 \{$/m);
  assert.match(
    files.get("acme/shop/v1/cases_bridge.ts")!,
    /^export function createRouter2Bridge\(impl: Partial<ServiceImpl<typeof router>>, options: ConnectBridgeOptions\): Bridge \{$/m,
  );
});

test("hooks: `request` is typed for unary and server-streaming methods only; keyword method names are plain keys", async () => {
  const { files } = await withTunnelCode("naming/proto");
  const router = files.get("acme/shop/v1/shop_router.ts")!;
  assert.match(router, /^ {2}delete\?: RoutingKeyHook<typeof Outer_InnerSchema>;$/m);
  assert.match(router, /^ {2}class\?: RoutingKeyHook<typeof Outer_InnerSchema>;$/m);
  assert.match(router, /^ {2}get_\?: RoutingKeyHook<typeof RefSchema>;$/m);
  assert.match(router, /^ {2}frame\?: RoutingKeyHook<typeof RefSchema>;$/m, "server streaming: one request");
  assert.match(router, /^ {2}health\?: \(call: Omit<Parameters<RoutingKeyHook>\[0\], "request">\) => string \| undefined;$/m, "client streaming: no request");
});

test("routing options in the proto become default hooks and the default balancer", async () => {
  const { files } = await withTunnelCode("routing/proto");
  const router = files.get("orders/v1/orders_router.ts")!;
  assert.match(router, /Get: \(keys\.get as RoutingKeyHook \| undefined\) \?\? .*const v = call\.request\?\.customer\?\.id;/);
  assert.match(router, /Upload: keys\.upload \?\? .*call\.metadata\.get\("x-tenant"\)\[0\]/);
  assert.match(router, /const balancer: RouterServiceOptions\["balancer"\] = options\.balancer \?\? \{ strategy: "consistent_hash" \};/);
});

test("a service with 100 methods: the whole table", async () => {
  const { plan, files } = await withTunnelCode("many/proto");
  const t = tunnelTable(files.get("bulk/v1/bulk_router.ts")!, "BulkTunnel");
  assert.deepEqual(t.fields, Object.fromEntries(plan.services.get("bulk.v1.Bulk")!.methods.map((m) => [m.name, m.fieldNumber])));
  assert.equal(Object.keys(t.fields).length, 100);
});

test("phases 3 and 4 are off when tunnelCode is false", async () => {
  const out = tempDir();
  try {
    const r = await generate({ root: path.join(fixturesDir, "nopackage/proto"), out: out.dir, tunnelCode: false });
    assert.deepEqual(
      r.files.filter((f) => /_(router|bridge)\.ts$/.test(f.path)),
      [],
    );
  } finally {
    out.remove();
  }
});

test("warm runs reuse cached outputs only where nothing they depend on changed: equal to a cold run", async () => {
  const { cpSync, writeFileSync, readFileSync } = await import("node:fs");
  const a = tempDir();
  const b = tempDir();
  const out = tempDir();
  try {
    cpSync(path.join(fixturesDir, "naming/proto"), a.dir, { recursive: true });
    const first = await generate({ root: a.dir, out: out.dir, tunnelCode: true });
    assert.deepEqual(first.diagnostics, []);
    // An imported file changes (shop.proto's outputs depend on it); cases.proto does not import it.
    const types = path.join(a.dir, "acme/common/v1/types.proto");
    writeFileSync(types, readFileSync(types, "utf8").replace("message Ref {", "message Ref {\n  string kind = 2;"));
    const warm = await generate({ root: a.dir, out: out.dir, tunnelCode: true });
    cpSync(a.dir, b.dir, { recursive: true });
    const cold = await generate({ root: b.dir, out: out.dir, tunnelCode: true });
    assert.deepEqual(warm.files, cold.files);
    assert.notDeepEqual(warm.files, first.files);
  } finally {
    a.remove();
    b.remove();
    out.remove();
  }
});
