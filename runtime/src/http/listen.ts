// Binding the router's small HTTP servers (dashboard, /metrics) and naming where they answer.
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";

/** Listens on host:port (0: an ephemeral port); resolves with the bound port and the URL origin
 *  to print. A wildcard host is shown as localhost, an IPv6 one in brackets. */
export async function listenHttp(server: Server, port: number, host: string): Promise<{ port: number; origin: string }> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  const shown = host === "0.0.0.0" || host === "::" ? "localhost" : host;
  return { port: bound, origin: `http://${shown.includes(":") ? `[${shown}]` : shown}:${bound}` };
}
