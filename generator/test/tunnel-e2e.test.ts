// The generated router and bridge (the routing fixture's goldens) work against the real
// runtime over loopback gRPC: the routing options written in the proto — a request-field key
// with consistent hashing, a metadata key on a client-streaming method — decide which
// instance serves a call, with no routing code written by the user.
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";
import { create, fromBinary, toBinary, type DescMessage, type DescService } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { goldensDir } from "./support/fixtures.js";

// Loaded at run time: the goldens sit outside this project's tsconfig (they are type-checked
// on their own in typecheck.test.ts), so tsc does not follow these imports.
interface Started {
  start(): Promise<void>;
  stop(graceMs?: number): Promise<void>;
}
interface RouterLike {
  listen(address?: string): Promise<{ port: number }>;
  close(graceMs?: number): Promise<void>;
}
const dir = path.join(goldensDir, "routing", "orders", "v1");
const load = async <T>(file: string) => (await import(pathToFileURL(path.join(dir, file)).href)) as T;

test("generated createOrdersRouter/createOrdersBridge: proto routing options pin keys to instances", async () => {
  const pb = await load<{ Orders: DescService; GetOrderRequestSchema: DescMessage; OrderSchema: DescMessage }>("orders_pb.ts");
  const { createOrdersRouter } = await load<{ createOrdersRouter: (o?: object) => RouterLike }>("orders_router.ts");
  const { createOrdersBridge } = await load<{ createOrdersBridge: (impl: object, o: object) => Started }>("orders_bridge.ts");

  const router = createOrdersRouter();
  const { port } = await router.listen("127.0.0.1:0");
  const address = `127.0.0.1:${port}`;
  const order = (id: string) => create(pb.OrderSchema, { id });
  const bridges = ["a", "b", "c"].map((instance) =>
    createOrdersBridge(
      {
        get: (req: { orderId: string }) => order(`${instance}:${req.orderId}`),
        async *list(req: { orderId: string }) {
          yield order(`${instance}:${req.orderId}`);
        },
        async upload(reqs: AsyncIterable<{ id: string }>) {
          let n = 0;
          for await (const _ of reqs) n++;
          return order(`${instance}:${n}`);
        },
      },
      { router: address, instanceId: instance },
    ),
  );
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  try {
    await Promise.all(bridges.map((b) => b.start()));
    const ser = (schema: DescMessage) => (m: object) => Buffer.from(toBinary(schema, m as never));
    const de = (schema: DescMessage) => (b: Buffer) => fromBinary(schema, b) as unknown as { id: string };
    const get = (customer: string, orderId: string) =>
      new Promise<string>((resolve, reject) =>
        client.makeUnaryRequest(
          "/orders.v1.Orders/Get",
          ser(pb.GetOrderRequestSchema),
          de(pb.OrderSchema),
          create(pb.GetOrderRequestSchema, { customer: { id: customer }, orderId }),
          (err, res) => (err ? reject(err) : resolve(res!.id)),
        ),
      );
    const list = (customer: string) =>
      new Promise<string>((resolve, reject) => {
        const ids: string[] = [];
        const s = client.makeServerStreamRequest(
          "/orders.v1.Orders/List",
          ser(pb.GetOrderRequestSchema),
          de(pb.OrderSchema),
          create(pb.GetOrderRequestSchema, { customer: { id: customer } }),
        );
        s.on("data", (o: { id: string }) => ids.push(o.id));
        s.on("error", reject);
        s.on("end", () => resolve(ids[0]!));
      });
    const upload = (tenant: string) =>
      new Promise<string>((resolve, reject) => {
        const md = new grpc.Metadata();
        md.set("x-tenant", tenant);
        const s = client.makeClientStreamRequest("/orders.v1.Orders/Upload", ser(pb.OrderSchema), de(pb.OrderSchema), md, (err, res) =>
          err ? reject(err) : resolve(res!.id),
        );
        s.write(order("1"));
        s.end();
      });
    const instanceOf = (id: string) => id.split(":")[0]!;

    const customers = Array.from({ length: 12 }, (_, i) => `customer-${i}`);
    const seen = new Set<string>();
    for (const c of customers) {
      const first = instanceOf(await get(c, "1"));
      seen.add(first);
      for (let i = 2; i <= 4; i++) assert.equal(instanceOf(await get(c, String(i))), first, `${c}: every Get goes to one instance`);
      assert.equal(instanceOf(await list(c)), first, `${c}: List has the same key (customer.id), so the same instance`);
    }
    assert.ok(seen.size > 1, `12 customers spread over more than one instance (got ${[...seen].join(",")})`);
    for (const tenant of ["t1", "t2", "t3"]) {
      const first = instanceOf(await upload(tenant));
      for (let i = 0; i < 3; i++) assert.equal(instanceOf(await upload(tenant)), first, `${tenant}: the x-tenant metadata key pins client-streaming Upload`);
    }
  } finally {
    client.close();
    await Promise.all(bridges.map((b) => b.stop(100)));
    await router.close(100);
  }
});

test("generated createOrdersRouter takes a per-service rate limit", async () => {
  const pb = await load<{ GetOrderRequestSchema: DescMessage; OrderSchema: DescMessage }>("orders_pb.ts");
  const { createOrdersRouter } = await load<{ createOrdersRouter: (o?: object) => RouterLike }>("orders_router.ts");
  const { createOrdersBridge } = await load<{ createOrdersBridge: (impl: object, o: object) => Started }>("orders_bridge.ts");
  // 0.001 calls/s: no token comes back during the test, so exactly the burst passes.
  const router = createOrdersRouter({ rateLimit: { methods: { Get: { perSecond: 0.001, burst: 2 } } } });
  const { port } = await router.listen("127.0.0.1:0");
  const address = `127.0.0.1:${port}`;
  const bridge = createOrdersBridge(
    { get: (req: { orderId: string }) => create(pb.OrderSchema, { id: req.orderId }) },
    { router: address, instanceId: "only" },
  );
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  try {
    await bridge.start();
    const get = () =>
      new Promise<number>((resolve) =>
        client.makeUnaryRequest(
          "/orders.v1.Orders/Get",
          (m: object) => Buffer.from(toBinary(pb.GetOrderRequestSchema, m as never)),
          (b: Buffer) => b,
          create(pb.GetOrderRequestSchema, { customer: { id: "c" }, orderId: "1" }),
          (err) => resolve(err ? err.code : grpc.status.OK),
        ),
      );
    const codes = [await get(), await get(), await get()];
    assert.deepEqual(codes, [grpc.status.OK, grpc.status.OK, grpc.status.RESOURCE_EXHAUSTED]);
  } finally {
    client.close();
    await bridge.stop(100);
    await router.close(100);
  }
});
