// The processes the data-plane benchmark (dataplane.bench.ts) measures, one role per process.
// Plain .mjs so the runtime's tsc project does not pull in the Echo example's sources (tsx
// loads the .ts). Only public APIs: the generated Echo router and bridge, createRawBridge,
// connect-node; so the bench measures whichever data plane the runtime has.
//
//   node --conditions=@grpcrouter/source --import tsx dataplane-servers.mjs <role> [args]
//
//   grpc-direct                 bare grpc-js server, identity serializers: Say answers an empty
//                               message, Count answers STREAM_MESSAGES empty messages
//   router                      the generated Echo router (createEchoRouter)
//   raw-bridge <router> [transport] [proxy]
//                               createRawBridge on EchoTunnel, answering like grpc-direct;
//                               transport auto|h2|websocket, proxy an http:// CONNECT proxy
//   connect-direct              the probe ServiceImpl served by connect-node (h2c)
//   connect-bridge <router>     the generated Echo bridge (createEchoBridge) with that impl
//   instances <router> <n> <p> <first> <per-address>
//                               n raw bridges (ids <p>-0…), started when "go" arrives on stdin;
//                               bridge i dials from 127.1.x.y number (first + i) / per-address
//
// On stdin, "answered" makes a role print {"answered":n}: the calls it has answered so far.
//
// Each prints one JSON line when ready ({"port":…} or {"ready":true}) and runs until killed.
// "instances" then prints {"progress":k,"turnedAway":t} lines and {"registered":n,"turnedAway":t,"ms":…}
// once every bridge has its Welcome (turnedAway: Register streams the router ended
// RESOURCE_EXHAUSTED, e.g. over its Hellos-per-second limit, which the bridges retried).
import http2 from "node:http2";
import { createInterface } from "node:readline";
import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { createRawBridge } from "@grpcrouter/runtime";
import { CountResponseSchema, Echo, SayResponseSchema } from "../../examples/echo/gen/demo/v1/echo_pb.ts";
import { createEchoRouter, EchoTunnel } from "../../examples/echo/gen/demo/v1/echo_router.ts";
import { createEchoBridge } from "../../examples/echo/gen/demo/v1/echo_bridge.ts";

/** Messages one Count call streams back (the server-streaming rows); the bench sets it. */
const STREAM_MESSAGES = Number(process.env.BENCH_STREAM_MESSAGES ?? 100);
const EMPTY = Buffer.alloc(0);
const identity = (b) => b;
const quiet = () => {};
const say = (line) => console.log(JSON.stringify(line));

// Exit cleanly on SIGTERM so that --cpu-prof can write its profile.
process.on("SIGTERM", () => process.exit(0));

// Calls this process answered. h2load counts HTTP 200s, and a gRPC error from a proxy or
// router in between is an HTTP 200 too: the bench compares h2load's count with this one.
let answered = 0;
const commands = new Map([["answered", () => say({ answered })]]);
createInterface({ input: process.stdin }).on("line", (line) => commands.get(line.trim())?.());

/** The instance's side of every path: an empty answer, the request never decoded. */
async function rawAnswer(call) {
  for await (const _ of call.requests); // a real server reads its request
  const n = call.method.endsWith("/Count") ? STREAM_MESSAGES : 1;
  for (let i = 0; i < n; i++) await call.send(EMPTY);
  answered++;
  return { code: grpc.status.OK };
}

/** The same Echo implementation for connect-node and the generated bridge (decodes, encodes). */
const probeImpl = {
  say() {
    answered++;
    return create(SayResponseSchema);
  },
  async *count() {
    for (let i = 0; i < STREAM_MESSAGES; i++) yield create(CountResponseSchema);
    answered++;
  },
};

/** The a-th loopback source address of the instances: 127.1.0.1, 127.1.0.2, … (all of 127/8 is loopback on Linux). */
const sourceAddress = (a) => `127.1.${Math.floor(a / 250)}.${(a % 250) + 1}`;

const [role, ...args] = process.argv.slice(2);
switch (role) {
  case "grpc-direct": {
    const server = new grpc.Server();
    const method = (path, responseStream) => ({
      path,
      requestStream: false,
      responseStream,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
    });
    server.addService(
      { Say: method("/demo.v1.Echo/Say", false), Count: method("/demo.v1.Echo/Count", true) },
      {
        Say: (_call, callback) => {
          answered++;
          callback(null, EMPTY);
        },
        Count: (call) => {
          for (let i = 0; i < STREAM_MESSAGES; i++) call.write(EMPTY);
          call.end();
          answered++;
        },
      },
    );
    const port = await new Promise((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    say({ port });
    break;
  }
  case "router": {
    const router = createEchoRouter({ logger: quiet });
    const { port } = await router.listen("127.0.0.1:0");
    say({ port });
    break;
  }
  case "raw-bridge": {
    const bridge = createRawBridge(EchoTunnel, rawAnswer, {
      router: args[0],
      instanceId: "raw-bridge",
      logger: quiet,
      ...(args[1] ? { transport: args[1] } : {}),
      ...(args[2] ? { proxy: args[2] } : {}),
    });
    await bridge.start();
    say({ ready: true });
    break;
  }
  case "connect-direct": {
    const server = http2.createServer(connectNodeAdapter({ routes: (r) => r.service(Echo, probeImpl) }));
    await new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", resolve);
    });
    say({ port: server.address().port });
    break;
  }
  case "connect-bridge": {
    const bridge = createEchoBridge(probeImpl, { router: args[0], instanceId: "connect-bridge", logger: quiet });
    await bridge.start();
    say({ ready: true });
    break;
  }
  case "instances": {
    // Instance k (of the whole run) dials from source address `sourceAddress(first + k)`, as
    // instances on their own hosts would: the router's per-address and per-connection
    // registration limits see what they would see in production, not one address.
    const [router, n, prefix, first, perAddress] = [args[0], Number(args[1]), args[2] ?? "i", Number(args[3] ?? 0), Number(args[4] ?? 0)];
    let turnedAway = 0;
    const logger = (line) => {
      if (/RESOURCE_EXHAUSTED/.test(line)) turnedAway++;
    };
    const bridges = Array.from({ length: n }, (_, i) =>
      createRawBridge(EchoTunnel, rawAnswer, {
        router,
        instanceId: `${prefix}-${i}`,
        logger,
        ...(perAddress > 0 ? { localAddress: sourceAddress(Math.floor((first + i) / perAddress)) } : {}),
      }),
    );
    say({ ready: true });
    await new Promise((resolve) => commands.set("go", resolve));
    const t0 = performance.now();
    let registered = 0;
    // Progress four times a second, so a bench that gives up can say how far it got.
    const progress = setInterval(() => say({ progress: registered, turnedAway }), 250);
    await Promise.all(bridges.map((b) => b.start().then(() => registered++)));
    clearInterval(progress);
    say({ registered: n, turnedAway, ms: performance.now() - t0 });
    break;
  }
  case "h2-hold": {
    // The transport floor of the instances row: a bare node:http2 server that holds each
    // connection's one open stream, as the router holds a Register stream.
    const server = http2.createServer({ maxSessionMemory: Number.MAX_SAFE_INTEGER });
    server.on("stream", (stream) => {
      stream.respond({ ":status": 200, "content-type": "application/grpc" });
      stream.on("data", () => {});
      stream.on("error", () => {});
    });
    server.on("sessionError", () => {});
    await new Promise((resolve) => server.listen({ port: 0, host: "127.0.0.1", backlog: 4096 }, resolve));
    say({ port: server.address().port });
    break;
  }
  case "h2-clients": {
    // As many connections as "instances" opens, from the same source addresses, each with one
    // open stream that sends 20 bytes (a Hello's size) and waits for the answer's headers.
    const [target, n, , first, perAddress] = [args[0], Number(args[1]), args[2], Number(args[3] ?? 0), Number(args[4] ?? 0)];
    say({ ready: true });
    await new Promise((resolve) => commands.set("go", resolve));
    let opened = 0;
    const progress = setInterval(() => say({ progress: opened }), 250);
    await Promise.all(
      Array.from({ length: n }, (_, i) => {
        const session = http2.connect(`http://${target}`, perAddress > 0 ? { localAddress: sourceAddress(Math.floor((first + i) / perAddress)) } : {});
        session.on("error", () => {});
        const stream = session.request({ ":method": "POST", ":path": "/bench.Hold/Register", "content-type": "application/grpc" }, { endStream: false });
        stream.on("error", () => {});
        stream.write(Buffer.alloc(20));
        return new Promise((resolve) => stream.once("response", resolve)).then(() => opened++);
      }),
    );
    clearInterval(progress);
    say({ registered: n, turnedAway: 0 });
    break;
  }
  default:
    console.error(`unknown role ${role}`);
    process.exit(2);
}
