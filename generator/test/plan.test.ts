// The decisions of phase 1 that users depend on, stated directly (the goldens show them in
// full): stable field numbers, collision-free names, comments carried over.
import assert from "node:assert/strict";
import { test } from "node:test";
import { formatDiagnostic, type RouterServicePlan } from "../src/index.js";
import { parsePreviousRouterProto } from "../src/phases/router-proto/previous.js";
import { generateFixture, generateInto, tempDir } from "./support/fixtures.js";

function numbers(s: RouterServicePlan): Record<string, number> {
  return Object.fromEntries(s.methods.map((m) => [m.name, m.fieldNumber]));
}

async function planOf(root: string, out: string) {
  const r = await generateFixture(root, out);
  assert.deepEqual(r.diagnostics.map(formatDiagnostic), []);
  return { plan: r.plan!, files: r.files };
}

test("stability: an inserted method keeps every number, a removed one is reserved by number and name, a returning one gets a new number", async () => {
  const out = tempDir();
  try {
    await generateInto("stability/v1", out.dir);
    const v1 = (await planOf("stability/v1", out.dir)).plan.services.get("svc.v1.Svc")!;
    assert.deepEqual(numbers(v1), { Alpha: 16, Beta: 17, Gamma: 18 });

    await generateInto("stability/v2", out.dir);
    const v2run = await planOf("stability/v2", out.dir);
    const v2 = v2run.plan.services.get("svc.v1.Svc")!;
    assert.deepEqual(numbers(v2), { Alpha: 16, Inserted: 19, Gamma: 18 });
    assert.deepEqual(v2.reserved, [{ number: 17, method: "Beta" }]);
    assert.deepEqual(v2.reservedNames, ["beta"]);
    const text = v2run.files.find((f) => f.path === "svc/v1/svc_router.proto")!.content;
    assert.match(text, /^ {2}reserved 17; \/\/ rpc Beta \(removed\)$/m);
    assert.match(text, /^ {2}reserved "beta";$/m);

    await generateInto("stability/v3", out.dir);
    const v3 = (await planOf("stability/v3", out.dir)).plan.services.get("svc.v1.Svc")!;
    assert.deepEqual(numbers(v3), { Beta: 20, Alpha: 16, Inserted: 19, Gamma: 18, Delta: 21 });
    assert.deepEqual(v3.reserved, [{ number: 17, method: "Beta" }]);
    assert.equal(v3.methods.find((m) => m.name === "Beta")!.fieldName, "beta_2", "a reserved field name is never reused");
  } finally {
    out.remove();
  }
});

test("stability: the previous output is what keeps numbers (a fresh output folder renumbers)", async () => {
  const out = tempDir();
  try {
    const fresh = (await planOf("stability/v2", out.dir)).plan.services.get("svc.v1.Svc")!;
    assert.deepEqual(numbers(fresh), { Alpha: 16, Inserted: 17, Gamma: 18 });
    assert.deepEqual(fresh.reserved, []);
  } finally {
    out.remove();
  }
});

test("naming: router names avoid user types, field names avoid each other, control cases, JSON-name clashes", async () => {
  const out = tempDir();
  try {
    const { plan, files } = await planOf("naming/proto", out.dir);
    const shop = plan.services.get("acme.shop.v1.Shop")!;
    // The user owns ShopRouterMessage, so the whole set moves to the next free suffix.
    assert.deepEqual(shop.names, {
      service: "ShopRouter2",
      instanceMessage: "ShopInstanceMessage2",
      routerMessage: "ShopRouterMessage2",
      instanceFrame: "ShopInstanceFrame2",
      routerFrame: "ShopRouterFrame2",
    });
    assert.equal(shop.routerService, "acme.shop.v1.ShopRouter2");
    const fields = Object.fromEntries(shop.methods.map((m) => [m.name, m.fieldName]));
    assert.deepEqual(fields, {
      Get: "get",
      get_: "get_2",
      delete: "delete",
      class: "class",
      Open: "open_2",
      WindowUpdate: "window_update_2",
      Call: "call_2",
      Frame: "frame_2",
      Health: "health_2",
    });
    // Two services in one file; a shared request type; types from other packages and nested ones.
    const admin = plan.services.get("acme.shop.v1.Admin")!;
    assert.equal(admin.names.service, "AdminRouter");
    assert.deepEqual(numbers(admin), { Reset: 16, Get: 17, Watch: 18 });
    assert.deepEqual(new Set(admin.methods.map((m) => m.requestType)), new Set(["google.protobuf.Empty"]));
    assert.equal(shop.methods.find((m) => m.name === "delete")!.requestType, "acme.shop.v1.Outer.Inner");
    assert.equal(shop.methods.find((m) => m.name === "Get")!.requestType, "acme.common.v1.Ref");
    const file = plan.files.find((f) => f.file === "acme/shop/v1/shop.proto")!;
    assert.deepEqual(file.imports, ["acme/common/v1/types.proto", "acme/shop/v1/shop.proto", "google/protobuf/empty.proto", "grpcrouter/v1/tunnel.proto"]);
    assert.ok(files.some((f) => f.path === "acme/shop/v1/shop_router_pb.ts"));
  } finally {
    out.remove();
  }
});

test("naming: a service with 100 methods numbers them 16..115", async () => {
  const out = tempDir();
  try {
    const { plan } = await planOf("many/proto", out.dir);
    const bulk = plan.services.get("bulk.v1.Bulk")!;
    assert.deepEqual(
      bulk.methods.map((m) => m.fieldNumber),
      Array.from({ length: 100 }, (_, i) => 16 + i),
    );
    assert.equal(new Set(bulk.methods.map((m) => m.fieldName)).size, 100);
  } finally {
    out.remove();
  }
});

test("comments on services and methods are carried into the router proto and the generated TypeScript", async () => {
  const out = tempDir();
  try {
    const { files } = await planOf("editor-workspace/proto", out.dir);
    const proto = files.find((f) => f.path === "shop/v1/orders_router.proto")!.content;
    assert.match(
      proto,
      /^\/\/ Orders keeps the orders of every customer\.\n\/\/\n\/\/ OrdersRouter is the grpcrouter tunnel of shop\.v1\.Orders\.\nservice OrdersRouter/m,
    );
    assert.match(
      proto,
      /^ {4}\/\/ Watch streams the changes of an order\.\n {4}\/\/\n {4}\/\/ The request message of \/shop\.v1\.Orders\/Watch \(server-streaming\)\.$/m,
    );
    const ts = files.find((f) => f.path === "shop/v1/orders_router_pb.ts")!.content;
    assert.match(ts, /Orders keeps the orders of every customer\./);
    assert.match(ts, /Import takes many orders at once\./);
  } finally {
    out.remove();
  }
});

test("a previous router proto is read back: services, names, numbers and reservations", () => {
  const text = [
    "// Code generated by grpcrouter. DO NOT EDIT.",
    "service EchoRouter { // routes demo.v1.Echo",
    "  rpc Register(stream EchoInstanceMessage) returns (stream EchoRouterMessage);",
    "}",
    "message EchoInstanceMessage {",
    "  repeated EchoInstanceFrame frames = 1;",
    "}",
    "message EchoRouterMessage {",
    "  repeated EchoRouterFrame frames = 1;",
    "}",
    "message EchoRouterFrame {",
    "  reserved 17; // rpc Old (removed)",
    '  reserved "old";',
    "  oneof frame {",
    "    .demo.v1.SayRequest say = 16; // rpc Say",
    "  }",
    "}",
  ].join("\n");
  const prev = parsePreviousRouterProto(text).get("demo.v1.Echo")!;
  assert.equal(prev.names.routerFrame, "EchoRouterFrame");
  assert.deepEqual([...prev.methods], [["Say", { number: 16, fieldName: "say" }]]);
  assert.deepEqual(prev.reserved, [{ number: 17, method: "Old" }]);
  assert.deepEqual([...prev.reservedNames], ["old"]);
  assert.equal(parsePreviousRouterProto(text.replace("// Code generated", "// Hand written")).size, 0, "files without our marker are ignored");
});
