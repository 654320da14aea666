// A TCP port free on a loopback address now, for the test helpers that start real servers
// (dnsmasq, tinyproxy, nginx, routers on 127.0.0.2, …). Plain JavaScript with a .d.mts beside it.
import { createServer } from "node:net";

/** @param {string} [host] */
export async function freePort(host = "127.0.0.1") {
  const s = createServer();
  await new Promise((resolve, reject) => {
    s.once("error", reject);
    s.listen(0, host, resolve);
  });
  const port = s.address().port;
  await new Promise((r) => s.close(r));
  return port;
}
