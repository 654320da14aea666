// The Welcome of accepted instances is encoded once per router (welcome.ts), and again only
// when the router's peer list (updated in place by --peers-dns) changed.
import assert from "node:assert/strict";
import { test } from "node:test";
import { fromBinary } from "@bufbuild/protobuf";
import { WelcomeSchema } from "../../src/gen/grpcrouter/v1/tunnel_pb.js";
import type { RouterContext } from "../../src/tunnel/router/router-context.js";
import { acceptedWelcome } from "../../src/tunnel/router/welcome.js";

test("acceptedWelcome: the same bytes for every instance until the peers change", () => {
  const peers = ["10.0.0.1:8443"];
  const ctx = { routerId: "r1", peers, limits: { heartbeatIntervalMs: 10_000, callWindow: 65536 } } as unknown as RouterContext;
  const first = acceptedWelcome(ctx);
  assert.equal(acceptedWelcome(ctx), first, "encoded once");
  const w = fromBinary(WelcomeSchema, first);
  assert.equal(w.accepted, true);
  assert.equal(w.routerId, "r1");
  assert.equal(w.initialWindow, 65536);
  assert.equal(Number(w.heartbeatInterval?.seconds), 10);
  assert.deepEqual(w.routerAddresses, ["10.0.0.1:8443"]);
  peers.push("10.0.0.2:8443");
  const second = acceptedWelcome(ctx);
  assert.notEqual(second, first);
  assert.deepEqual(fromBinary(WelcomeSchema, second).routerAddresses, ["10.0.0.1:8443", "10.0.0.2:8443"]);
  const other = { ...ctx, routerId: "r2", peers: [] } as unknown as RouterContext;
  assert.equal(fromBinary(WelcomeSchema, acceptedWelcome(other)).routerId, "r2", "per router");
});
