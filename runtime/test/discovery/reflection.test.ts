// Server reflection as grpcurl sees it: a reflection client (grpc-js, v1 and v1alpha) lists
// the services registered through addReflection, describes them with their imports, and
// calls one using nothing but the descriptors the server sent.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary, toJson, type DescMessage, type Registry } from "@bufbuild/protobuf";
import { AdminHub, addAdminService } from "../../src/admin/index.js";
import { addReflection, createReflectionClient, ReflectionError } from "../../src/discovery/index.js";
import { file_grpcrouter_v1_admin } from "../../src/gen/grpcrouter/v1/admin_pb.js";
import { file_grpc_health_v1_health } from "../../src/discovery/gen/grpc/health/v1/health_pb.js";
import { ReflectionClient, type ReflectionVersion } from "./reflection-client.js";

describe("addReflection", () => {
  const server = new grpc.Server();
  const hub = new AdminHub({ routerId: "reflected" });
  let target = "";

  before(async () => {
    addAdminService(server, hub);
    addReflection(server, [file_grpcrouter_v1_admin], ["grpcrouter.v1.Admin"]);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    target = `127.0.0.1:${port}`;
    hub.publish({ type: "instanceRegistered", instance: { id: "i-1", service: "demo.v1.Echo" } });
  });

  after(async () => {
    hub.close();
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  });

  for (const version of ["v1", "v1alpha"] as ReflectionVersion[]) {
    describe(`grpc.reflection.${version}`, () => {
      let client: ReflectionClient;
      before(() => {
        client = new ReflectionClient(target, version);
      });
      after(() => client.close());

      it("lists the routed services", async () => {
        const services = await client.listServices();
        assert.ok(services.includes("grpcrouter.v1.Admin"), `services: ${services.join(", ")}`);
      });

      it("describes a service with the file that declares it and its imports", async () => {
        const files = await client.fileContainingSymbol("grpcrouter.v1.Admin");
        const names = files.map((f) => f.name);
        assert.equal(names[0], "grpcrouter/v1/admin.proto");
        assert.ok(names.includes("google/protobuf/timestamp.proto"), `files: ${names.join(", ")}`);
        const svc = files[0]!.service.find((s) => s.name === "Admin");
        assert.deepEqual(
          svc?.method.map((m) => `${m.name}(${m.inputType}) ${m.serverStreaming ? "stream " : ""}${m.outputType}`),
          [
            "GetSnapshot(.grpcrouter.v1.GetSnapshotRequest) .grpcrouter.v1.Snapshot",
            "Watch(.grpcrouter.v1.WatchRequest) stream .grpcrouter.v1.Event",
            "Act(.grpcrouter.v1.ActionRequest) .grpcrouter.v1.ActionResult",
            "Replay(.grpcrouter.v1.ReplayRequest) .grpcrouter.v1.ReplayResult",
          ],
        );
      });

      it("describes a message by its name", async () => {
        const files = await client.fileContainingSymbol("grpcrouter.v1.Instance");
        assert.equal(files[0]?.name, "grpcrouter/v1/admin.proto");
      });

      it("sends an imported file by its name", async () => {
        const files = await client.fileByFilename("google/protobuf/duration.proto");
        assert.deepEqual(
          files.map((f) => f.name),
          ["google/protobuf/duration.proto"],
        );
        assert.ok(files[0]!.messageType.some((m) => m.name === "Duration"));
      });

      it("answers NOT_FOUND for an unknown symbol", async () => {
        await assert.rejects(client.fileContainingSymbol("nope.v1.Missing"), (e: { code?: number }) => e.code === grpc.status.NOT_FOUND);
      });

      it("lets a client call a method knowing only what reflection said", async () => {
        const registry = await client.registryFor("grpcrouter.v1.Admin");
        const method = registry.getService("grpcrouter.v1.Admin")?.methods.find((m) => m.name === "GetSnapshot");
        assert.ok(method, "GetSnapshot is described");
        const json = await callUnary(target, `/grpcrouter.v1.Admin/${method.name}`, method.input, method.output, registry);
        assert.equal((json as { routerId?: string }).routerId, "reflected");
        assert.deepEqual(
          (json as { instances?: { id: string }[] }).instances?.map((i) => i.id),
          ["i-1"],
        );
      });
    });
  }
});

describe("createReflectionClient (the runtime's own client)", () => {
  it("lists, describes and builds a registry over v1 and v1alpha", async () => {
    const server = new grpc.Server();
    addReflection(server, [file_grpcrouter_v1_admin], ["grpcrouter.v1.Admin"]);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    try {
      for (const version of ["v1", "v1alpha"] as const) {
        const client = createReflectionClient(`127.0.0.1:${port}`, { version });
        try {
          assert.deepEqual(await client.listServices(), ["grpcrouter.v1.Admin"]);
          const registry = await client.registryFor("grpcrouter.v1.Admin");
          assert.equal(registry.getMessage("grpcrouter.v1.Snapshot")?.field.routerAddress?.fieldKind, "scalar");
          await assert.rejects(client.fileByFilename("nope.proto"), (e: unknown) => e instanceof ReflectionError && e.code === grpc.status.NOT_FOUND);
        } finally {
          client.close();
        }
      }
    } finally {
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    }
  });
});

describe("addReflection after a reload", () => {
  it("describes what the returned function last set", async () => {
    const server = new grpc.Server();
    const replace = addReflection(server, [file_grpcrouter_v1_admin], ["grpcrouter.v1.Admin"]);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    const client = new ReflectionClient(`127.0.0.1:${port}`, "v1");
    try {
      assert.deepEqual(await client.listServices(), ["grpcrouter.v1.Admin"]);
      replace([file_grpc_health_v1_health], ["grpc.health.v1.Health"]);
      assert.deepEqual(await client.listServices(), ["grpc.health.v1.Health"]);
      await assert.rejects(client.fileContainingSymbol("grpcrouter.v1.Admin"), (e: { code?: number }) => e.code === grpc.status.NOT_FOUND);
      assert.equal((await client.fileContainingSymbol("grpc.health.v1.HealthCheckResponse.ServingStatus"))[0]?.name, "grpc/health/v1/health.proto");
    } finally {
      client.close();
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    }
  });
});

async function callUnary(target: string, path: string, input: DescMessage, output: DescMessage, registry: Registry): Promise<unknown> {
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  try {
    const res = await new Promise<Buffer>((resolve, reject) =>
      client.makeUnaryRequest(
        path,
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.from(toBinary(input, create(input))),
        (e, r) => (e || !r ? reject(e ?? new Error("no response")) : resolve(r)),
      ),
    );
    return toJson(output, fromBinary(output, res), { registry });
  } finally {
    client.close();
  }
}
