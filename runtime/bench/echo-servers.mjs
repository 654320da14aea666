// The processes the router benchmark measures, on the bundled Echo example (plain .mjs so
// the runtime's tsc project does not pull in the example's sources; tsx loads the .ts).
//   node --conditions=@grpcrouter/source --import tsx echo-servers.mjs direct
//   node --conditions=@grpcrouter/source --import tsx echo-servers.mjs router [balancer config as JSON]
//   node --conditions=@grpcrouter/source --import tsx echo-servers.mjs instance <router host:port> [instance id]
// Each prints one JSON line when ready ({"port":…} or {"ready":true}) and runs until killed.
import { serveDirect } from "../../examples/echo/src/direct.ts";
import { echoService } from "../../examples/echo/src/service.ts";
import { createEchoRouter } from "../../examples/echo/gen/demo/v1/echo_router.ts";
import { createEchoBridge } from "../../examples/echo/gen/demo/v1/echo_bridge.ts";

const [mode, arg] = process.argv.slice(2);
const quiet = () => {};
// Exit cleanly on kill() so that --cpu-prof can write its profile.
process.on("SIGTERM", () => process.exit(0));
if (mode === "direct") {
  const s = await serveDirect(0);
  console.log(JSON.stringify({ port: s.port }));
} else if (mode === "router") {
  // A balancer config (the balancer column); a keyed strategy hashes SayRequest.text.
  const balancer = arg ? JSON.parse(arg) : undefined;
  const router = createEchoRouter({ logger: quiet, ...(balancer ? { balancer, routingKeys: { say: (c) => c.request?.text } } : {}) });
  const { port } = await router.listen("127.0.0.1:0");
  console.log(JSON.stringify({ port }));
} else if (mode === "instance") {
  const id = process.argv[4] ?? "bench";
  const bridge = createEchoBridge(echoService(id), { router: arg, instanceId: id, labels: { zone: "a" }, logger: quiet });
  await bridge.start();
  console.log(JSON.stringify({ ready: true }));
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
