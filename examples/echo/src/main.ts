// The bundled example (`npm start`): a router, an Echo instance bridged to it, and a client
// that calls the router for the ORIGINAL service, demo.v1.Echo, with one call of each kind.
// In a real deployment the three live in different places; the instance only dials out.
import { parseArgs } from "node:util";
import { createRegistry } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AdminHub, createRouterMetrics, describeFromRegistry, startDashboard } from "@grpcrouter/runtime";
import { Echo, file_demo_v1_echo } from "../gen/demo/v1/echo_pb.js";
import { createEchoBridge } from "../gen/demo/v1/echo_bridge.js";
import { createEchoRouter } from "../gen/demo/v1/echo_router.js";
import { echoService } from "./service.js";

const { values } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: process.env.PORT ?? "9090" },
    "admin-port": { type: "string" },
    once: { type: "boolean", default: false },
  },
});
const host = values.host;

// 1. The router: where clients can reach it. The hub feeds the live dashboard; with the
//    registry it can show each message's body as JSON.
const hub = new AdminHub({ describe: describeFromRegistry(createRegistry(file_demo_v1_echo)) });
const metrics = createRouterMetrics({ hub }); // Prometheus, at the dashboard's /metrics
const router = createEchoRouter({ hub });
let port: number;
try {
  ({ port } = await router.listen(`${host}:${values.port}`));
} catch (e) {
  console.error(`cannot listen on ${host}:${values.port}: ${(e as Error).message} (try npm start -- --port 0)`);
  process.exit(1);
}
const address = `${host}:${port}`;
console.log(`router    listening on ${address}, routing demo.v1.Echo`);
// The dashboard port follows the router's: 9091 beside 9090, a free one beside port 0.
const adminPort = Number(values["admin-port"] ?? (Number(values.port) === 0 ? 0 : port + 1));
// The dashboard shows every message's metadata and body: it stays on loopback whatever
// --host says (reach it from elsewhere through an SSH tunnel, not an open port).
const dashboard = await startDashboard({ hub, metrics, port: adminPort, host: "127.0.0.1" });
console.log(`dashboard ${dashboard.url} shows instances, calls and every message, live (metrics: ${dashboard.url}metrics)`);

// 2. The instance: an unchanged Connect ServiceImpl, bridged in three lines.
const bridge = createEchoBridge(echoService("echo-1"), { router: address, instanceId: "echo-1" });
await bridge.start();
console.log(`instance  echo-1 dialled out and registered`);

// 3. A client: ordinary gRPC to the router, for demo.v1.Echo.
const client = createClient(Echo, createGrpcTransport({ baseUrl: `http://${address}` }));

const said = await client.say({ text: "hello" });
console.log(`unary     Say("hello")            → "${said.text}" from ${said.instanceId}`);

const counted: string[] = [];
for await (const r of client.count({ text: "tick", count: 3 })) counted.push(`${r.text}#${r.index}`);
console.log(`server    Count("tick", 3)        → ${counted.join(", ")}`);

async function* words(...texts: string[]) {
  for (const text of texts) yield { text };
}
const collected = await client.collect(words("through", "the", "firewall"));
console.log(`client    Collect(3 messages)     → "${collected.text}" (${collected.count} messages)`);

const chatted: string[] = [];
for await (const r of client.chat(words("ping", "pong"))) chatted.push(`"${r.text}" from ${r.instanceId}`);
console.log(`bidi      Chat("ping", "pong")    → ${chatted.join(", ")}`);

async function shutdown(): Promise<void> {
  await bridge.stop();
  await router.close();
  await dashboard.close();
  hub.close();
  metrics.close();
}

if (values.once) {
  await shutdown();
} else {
  console.log(`\nthe router keeps running on ${address}: call demo.v1.Echo there with any gRPC client. Ctrl-C stops.`);
  const stop = () => {
    console.log("draining…");
    void shutdown().then(() => process.exit(0));
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
