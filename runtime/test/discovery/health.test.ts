// grpc.health.v1.Health as a probe (grpc-health-probe, Kubernetes) sees a router: Check and
// Watch follow RouterHealth, which the router drives from its registry.
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { RouterHealth } from "../../src/discovery/index.js";

const require = createRequire(import.meta.url);
const healthProto = path.join(path.dirname(require.resolve("grpc-health-check/package.json")), "proto", "health", "v1", "health.proto");

type Status = "UNKNOWN" | "SERVING" | "NOT_SERVING" | "SERVICE_UNKNOWN";
interface HealthClient extends grpc.Client {
  check(req: { service: string }, cb: (e: grpc.ServiceError | null, r?: { status: Status }) => void): void;
  watch(req: { service: string }): grpc.ClientReadableStream<{ status: Status }>;
}

describe("RouterHealth over grpc.health.v1.Health", () => {
  const server = new grpc.Server();
  const health = new RouterHealth(["demo.v1.Echo", "demo.v1.Greeter"]);
  let client: HealthClient;

  const check = (service: string) => new Promise<Status>((resolve, reject) => client.check({ service }, (e, r) => (e ? reject(e) : resolve(r!.status))));

  before(async () => {
    health.addTo(server);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    const def = protoLoader.loadSync(healthProto, { enums: String, defaults: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } };
    client = new pkg.grpc.health.v1.Health(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as HealthClient;
  });

  after(async () => {
    client.close();
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  });

  it("reports the router itself SERVING and a service without instances NOT_SERVING", async () => {
    assert.equal(await check(""), "SERVING");
    assert.equal(await check("demo.v1.Echo"), "NOT_SERVING");
  });

  it("answers NOT_FOUND for a service the router does not route", async () => {
    await assert.rejects(check("nope.v1.Missing"), (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND);
  });

  it("Check follows instances coming and going", async () => {
    health.set("demo.v1.Greeter", true);
    assert.equal(await check("demo.v1.Greeter"), "SERVING");
    health.set("demo.v1.Greeter", false);
    assert.equal(await check("demo.v1.Greeter"), "NOT_SERVING");
  });

  it("Watch streams each change once", async () => {
    const stream = client.watch({ service: "demo.v1.Echo" });
    const seen: Status[] = [];
    const next = () =>
      new Promise<Status>((resolve, reject) => {
        stream.once("data", (m: { status: Status }) => {
          seen.push(m.status);
          resolve(m.status);
        });
        stream.once("error", reject);
      });
    assert.equal(await next(), "NOT_SERVING");
    const serving = next();
    health.set("demo.v1.Echo", true);
    health.set("demo.v1.Echo", true); // no change: no message
    assert.equal(await serving, "SERVING");
    const down = next();
    health.set("demo.v1.Echo", false);
    assert.equal(await down, "NOT_SERVING");
    stream.cancel();
    assert.deepEqual(seen, ["NOT_SERVING", "SERVING", "NOT_SERVING"]);
  });

  it("List reports every service and the router", async () => {
    const statuses = await new Promise<Record<string, { status: Status }>>((resolve, reject) =>
      (client as unknown as { list(r: object, cb: (e: Error | null, r?: { statuses: Record<string, { status: Status }> }) => void): void }).list({}, (e, r) =>
        e ? reject(e) : resolve(r!.statuses),
      ),
    );
    assert.deepEqual(Object.keys(statuses).sort(), ["", "demo.v1.Echo", "demo.v1.Greeter"]);
    assert.equal(statuses[""]?.status, "SERVING");
  });

  it("Watch of an unknown service says SERVICE_UNKNOWN, then follows it once it is routed", async () => {
    const stream = client.watch({ service: "demo.v1.Later" });
    const next = () =>
      new Promise<Status>((resolve, reject) => {
        stream.once("data", (m: { status: Status }) => resolve(m.status));
        stream.once("error", reject);
      });
    assert.equal(await next(), "SERVICE_UNKNOWN");
    const serving = next();
    health.set("demo.v1.Later", true);
    assert.equal(await serving, "SERVING");
    const gone = next();
    health.remove("demo.v1.Later");
    assert.equal(await gone, "SERVICE_UNKNOWN");
    stream.cancel();
  });

  it("shutdown marks the router and every service NOT_SERVING", async () => {
    health.set("demo.v1.Echo", true);
    health.shutdown();
    assert.equal(await check(""), "NOT_SERVING");
    assert.equal(await check("demo.v1.Echo"), "NOT_SERVING");
    assert.equal(await check("demo.v1.Greeter"), "NOT_SERVING");
  });
});
