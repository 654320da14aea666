// HTTP CONNECT proxies on the way to a router or a target: which proxy a dial takes (an
// explicit URL, else the environment the way grpc-js reads it: grpc_proxy, https_proxy,
// http_proxy, minus no_grpc_proxy / no_proxy) and the CONNECT handshake that turns a TCP
// connection to the proxy into a tunnel to the destination. TLS to the destination, when
// configured, then runs inside that tunnel.
import { BlockList, connect as netConnect, isIP, type Socket } from "node:net";

export interface ProxyConfig {
  /** host:port of the proxy. */
  host: string;
  port: number;
  /** "Basic …", from the URL's user info; undefined without one. */
  authorization: string | undefined;
  /** The URL without credentials, for messages and logs. */
  display: string;
}

/**
 * `proxy`: a URL (`http://[user:password@]host[:port]`), `false` for no proxy, or undefined to
 * follow the environment. An explicit URL is used for every destination; one from the
 * environment is skipped for destinations that no_grpc_proxy (or else no_proxy) names.
 */
export function proxyFor(
  destination: { host: string; port: number },
  proxy: string | false | undefined,
  env: NodeJS.ProcessEnv = process.env,
  /** Hears why a proxy from the environment is ignored (grpc-js ignores one it cannot use, too). */
  onIgnored: (why: string) => void = () => {},
): ProxyConfig | undefined {
  if (proxy === false) return undefined;
  if (proxy !== undefined && proxy !== "") return parseProxyUrl(proxy, "proxy");
  const [name, value] = firstSet(env, ["grpc_proxy", "https_proxy", "http_proxy"]);
  if (!name || !value) return undefined;
  const [, noProxy] = firstSet(env, ["no_grpc_proxy", "no_proxy"]);
  if (noProxy && bypasses(noProxy, destination)) return undefined;
  try {
    return parseProxyUrl(value, name);
  } catch (e) {
    onIgnored(`${(e as Error).message}; dialling directly`);
    return undefined;
  }
}

function firstSet(env: NodeJS.ProcessEnv, names: string[]): [string | undefined, string | undefined] {
  for (const n of names) {
    const v = env[n];
    if (v !== undefined && v !== "") return [n, v];
  }
  return [undefined, undefined];
}

/** Parses a proxy URL; errors name where it came from (`--proxy`, `https_proxy`, …). */
export function parseProxyUrl(value: string, source: string): ProxyConfig {
  // grpc-js accepts a bare host:port in the environment, as curl does.
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new Error(`${source} ${JSON.stringify(value)}: not a proxy URL (expected http://[user:password@]host:port)`);
  }
  if (url.protocol !== "http:") throw new Error(`${source} ${url.protocol}//${url.host}: only http:// proxies (HTTP CONNECT) are supported`);
  if (!url.hostname) throw new Error(`${source} ${JSON.stringify(value)}: the proxy URL names no host`);
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = url.port ? Number(url.port) : 80;
  let authorization: string | undefined;
  if (url.username || url.password) {
    const user = decodeURIComponent(url.username);
    const password = decodeURIComponent(url.password);
    authorization = `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
  }
  return { host, port, authorization, display: `http://${url.host}` };
}

/**
 * Whether a no_proxy list names the destination: `*`; a host name, matching it and its
 * subdomains (`example.com`, `.example.com`); an IP address or CIDR range; each optionally
 * with `:port`.
 */
export function bypasses(noProxy: string, destination: { host: string; port: number }): boolean {
  const host = destination.host.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  for (const raw of noProxy.split(",")) {
    let entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === "*") return true;
    // A port after a name, an IPv4 address or a bracketed IPv6 address; a bare IPv6 has none.
    const m = /^(\[[^\]]+\]|[^:[\]]+):(\d+)$/.exec(entry);
    if (m) {
      if (Number(m[2]) !== destination.port) continue;
      entry = m[1]!;
    }
    entry = entry.replace(/^\[(.*)\]$/, "$1");
    const slash = entry.indexOf("/");
    if (slash > 0 && isIP(entry.slice(0, slash)) && isIP(host)) {
      const family = isIP(entry.slice(0, slash)) === 6 ? "ipv6" : "ipv4";
      if (family !== (isIP(host) === 6 ? "ipv6" : "ipv4")) continue;
      const list = new BlockList();
      try {
        list.addSubnet(entry.slice(0, slash), Number(entry.slice(slash + 1)), family);
      } catch {
        continue;
      }
      if (list.check(host, family)) return true;
      continue;
    }
    const name = entry.replace(/^\*?\./, "");
    if (host === name || host.endsWith(`.${name}`)) return true;
  }
  return false;
}

/** Largest proxy answer header accepted: a proxy is not allowed to make us buffer without end. */
const MAX_RESPONSE_HEADER_BYTES = 16 * 1024;

/**
 * Opens a TCP connection to the proxy and asks it to CONNECT to `host:port`. Resolves with
 * the connected socket (its reading paused, bytes the proxy sent after its answer put back);
 * rejects with the proxy's status line when it refuses.
 */
export function connectThroughProxy(proxy: ProxyConfig, destination: { host: string; port: number }, timeoutMs: number): Promise<Socket> {
  const authority = `${destination.host.includes(":") ? `[${destination.host}]` : destination.host}:${destination.port}`;
  return new Promise<Socket>((resolve, reject) => {
    const socket = netConnect({ host: proxy.host, port: proxy.port });
    let settled = false;
    const fail = (message: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(new Error(message));
    };
    const timer = setTimeout(() => fail(`proxy ${proxy.display} did not answer CONNECT ${authority} within ${timeoutMs} ms`), timeoutMs);
    timer.unref();
    socket.once("error", (e) => fail(`proxy ${proxy.display}: ${e.message}`));
    socket.once("close", () => fail(`proxy ${proxy.display} closed the connection before answering CONNECT ${authority}`));
    socket.once("connect", () => {
      const lines = [`CONNECT ${authority} HTTP/1.1`, `Host: ${authority}`];
      if (proxy.authorization) lines.push(`Proxy-Authorization: ${proxy.authorization}`);
      socket.write(`${lines.join("\r\n")}\r\n\r\n`);
    });
    let received: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      const end = received.indexOf("\r\n\r\n");
      if (end < 0) {
        if (received.length > MAX_RESPONSE_HEADER_BYTES) fail(`proxy ${proxy.display} sent an answer header over ${MAX_RESPONSE_HEADER_BYTES} bytes`);
        return;
      }
      socket.off("data", onData);
      socket.pause();
      const statusLine = received.subarray(0, received.indexOf("\r\n")).toString("latin1");
      const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(statusLine);
      if (!m) return fail(`proxy ${proxy.display} answered CONNECT ${authority} with ${JSON.stringify(statusLine.slice(0, 100))}, not HTTP`);
      if (m[1] !== "200") {
        const hint =
          m[1] === "407"
            ? proxy.authorization
              ? " (the proxy refused the credentials in its URL)"
              : " (give credentials in the proxy URL: http://user:password@host:port)"
            : "";
        return fail(`proxy ${proxy.display} refused CONNECT ${authority}: ${m[1]} ${m[2] ?? ""}`.trimEnd() + hint);
      }
      const rest = received.subarray(end + 4);
      if (rest.length > 0) socket.unshift(rest);
      settled = true;
      clearTimeout(timer);
      socket.removeAllListeners("error");
      socket.removeAllListeners("close");
      resolve(socket);
    };
    socket.on("data", onData);
  });
}
