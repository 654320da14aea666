// A router shutting down (SIGTERM, router.close) must not send all its instances to the
// routers taking over at the same moment: it tells them to move (Drain) spread over a window
// as long as it needs to admit that many Hellos, and each bridge registers anew on a new
// connection, which the load balancer in front sends to a router still in rotation. What
// is checked is the shape of the arrivals there, never how long they took.
import assert from "node:assert/strict";
import * as net from "node:net";
import { test } from "node:test";
import type { AuditEvent } from "../../src/log/audit.js";
import { createRawBridge } from "../../src/tunnel/index.js";
import { TestTunnel, startRouter, waitFor } from "./helpers.js";

const BRIDGES = 200;
const HELLOS_PER_SECOND = 40;
/** The drain window router A spreads its Drains over: BRIDGES / HELLOS_PER_SECOND seconds. */
const WINDOW_MS = (BRIDGES / HELLOS_PER_SECOND) * 1000;

/** A TCP load balancer with one backend in rotation at a time; connections made stay where they went. */
async function startBalancer(backend: number): Promise<{ server: net.Server; port: number; route(port: number): void }> {
  let current = backend;
  const server = net.createServer((client) => {
    const upstream = net.connect(current, "127.0.0.1");
    const both = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", both).on("close", both);
    upstream.on("error", both).on("close", both);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, port: (server.address() as net.AddressInfo).port, route: (port) => (current = port) };
}

test(`a router drained under ${BRIDGES} bridges: they re-register with the next router spread over the drain window, not as one wave`, async () => {
  const arrivals: number[] = [];
  let draining = false;
  let turnedAwayWhileDraining = 0;
  const a = await startRouter({
    registrationLimits: { hellosPerSecond: HELLOS_PER_SECOND },
    audit: (e: AuditEvent) => {
      if (draining && e.kind === "turnedAway") turnedAwayWhileDraining++;
    },
  });
  const b = await startRouter({
    audit: (e: AuditEvent) => {
      if (e.kind === "registered") arrivals.push(performance.now());
    },
  });
  const balancer = await startBalancer(a.port);
  const bridges = Array.from({ length: BRIDGES }, (_, i) =>
    createRawBridge(TestTunnel, async () => ({ code: 0 }), {
      router: `127.0.0.1:${balancer.port}`,
      instanceId: `i-${i}`,
      logger: () => {},
      backoff: { initialMs: 50, maxMs: 500 },
    }),
  );
  try {
    await Promise.all(bridges.map((x) => x.start()));
    await waitFor(`${BRIDGES} bridges to register with router A`, () => a.router.instances().length === BRIDGES, 120_000);
    // A leaves the balancer's rotation and shuts down.
    balancer.route(b.port);
    draining = true;
    const closed = a.router.close(30_000);
    await waitFor(`${BRIDGES} bridges to register with router B`, () => b.router.instances().length === BRIDGES, 120_000);
    await closed;

    assert.equal(arrivals.length, BRIDGES, "each bridge registered with B once");
    // Each moved on a new connection, not back over its old one to the router shutting down.
    assert.equal(turnedAwayWhileDraining, 0, `${turnedAwayWhileDraining} re-registrations went to the draining router`);
    // Split the drain window in ten: at once (no spread) they would all fall in the first one
    // or two; spread, each holds about a tenth. This process runs 200 bridges and both
    // routers, so on a loaded machine a registration may lag its Drain by a tenth or more:
    // some bunching is allowed, a wave is not.
    // Arrivals after the window (late under load) go into further tenths, never all into the
    // last one: lateness is not a wave.
    const t0 = Math.min(...arrivals);
    const buckets = new Array<number>(10).fill(0);
    for (const t of arrivals) {
      const n = Math.floor(((t - t0) / WINDOW_MS) * 10);
      buckets[n] = (buckets[n] ?? 0) + 1;
    }
    for (let n = 0; n < buckets.length; n++) buckets[n] ??= 0;
    const busiest = Math.max(...buckets);
    assert.ok(busiest <= BRIDGES * 0.3, `arrivals per tenth of the ${WINDOW_MS} ms drain window: ${buckets.join(" ")}`);
    assert.ok(buckets.filter((n) => n > 0).length >= 6, `arrivals per tenth of the drain window: ${buckets.join(" ")}`);
  } finally {
    await Promise.all(bridges.map((x) => x.stop(0)));
    balancer.server.close();
    await a.router.close(0);
    await b.router.close(0);
  }
});
