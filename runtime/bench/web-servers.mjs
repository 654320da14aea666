// The router process of the web benchmark: the Echo router on its own port (router.listen:
// native gRPC, gRPC-Web and Connect, HTTP/2 connections told from HTTP/1.1 by their first
// bytes) and the same router on a bare node:http2 server (router.handler: native HTTP/2
// only, nothing in front), so both are measured in one process.
//   node --conditions=@grpcrouter/source --import tsx web-servers.mjs
// Prints {"port":…, "bare":…} when ready and runs until killed.
import * as http2 from "node:http2";
import { createEchoRouter } from "../../examples/echo/gen/demo/v1/echo_router.ts";

process.on("SIGTERM", () => process.exit(0));
const router = createEchoRouter({ logger: () => {} });
const { port } = await router.listen("127.0.0.1:0");
const bare = http2.createServer({ maxSessionMemory: Number.MAX_SAFE_INTEGER });
bare.on("stream", router.handler);
bare.on("connection", (s) => s.setNoDelay(true));
await new Promise((resolve) => bare.listen(0, "127.0.0.1", resolve));
console.log(JSON.stringify({ port, bare: bare.address().port }));
