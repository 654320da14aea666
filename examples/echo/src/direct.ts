// The Echo service served directly over gRPC (HTTP/2) with connect-node, as an existing
// service would be: the benchmark's baseline, and a target for `grpcrouter bridge --target`.
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { Echo } from "../gen/demo/v1/echo_pb.js";
import { echoService } from "./service.js";

export interface DirectServer {
  port: number;
  close(): Promise<void>;
}

export async function serveDirect(port = 0, host = "127.0.0.1", instanceId = "direct"): Promise<DirectServer> {
  const handler = connectNodeAdapter({
    routes: (router) => router.service(Echo, echoService(instanceId)),
  });
  const server = http2.createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Open sessions keep close() waiting; a benchmark's clients are gone by now.
        setTimeout(resolve, 1000).unref();
      }),
  };
}
