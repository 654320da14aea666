// Where a bridge finds its routers: a list of host:port, and gRPC's `dns:` target syntax for
// a name that resolves to every router of a deployment (a Kubernetes headless Service):
//   dns:///router-headless.ns.svc:9090        the system's resolver
//   dns://10.0.0.10:53/router-headless:9090   a given DNS server (the target's authority)
// A dns target is resolved to all of its addresses (A and AAAA), again every `intervalMs`
// and whenever the bridge asks (a lost connection), and the caller is told which router
// addresses appeared and which went away. A failed lookup keeps the last good answer: a DNS
// hiccup must never deregister an instance from every router.
import { Resolver } from "node:dns/promises";
import { isIP } from "node:net";

/** A router the bridge dials: `address` is host:port; `authority` is the name TLS checks. */
export interface RouterEndpoint {
  address: string;
  /** The DNS name behind a resolved address (for TLS server name and :authority). */
  authority?: string | undefined;
}

export type RouterTarget = { kind: "static"; address: string } | { kind: "dns"; target: string; name: string; port: number; dnsServer?: string | undefined };

/** gRPC's default port for `dns:` targets without one. */
export const DEFAULT_DNS_PORT = 443;

export class RouterTargetError extends Error {
  constructor(
    readonly target: string,
    problem: string,
  ) {
    super(`router target ${JSON.stringify(target)}: ${problem}`);
    this.name = "RouterTargetError";
  }
}

/** Splits "a:1,b:2" (and arrays of such strings) and parses each target. */
export function parseRouterTargets(spec: string | readonly string[]): RouterTarget[] {
  const parts = (typeof spec === "string" ? [spec] : spec)
    .flatMap((s) => s.split(","))
    .map((s) => s.trim())
    .filter(Boolean);
  if (parts.length === 0) throw new RouterTargetError(String(spec), "names no router");
  return parts.map(parseRouterTarget);
}

export function parseRouterTarget(target: string): RouterTarget {
  if (!target.startsWith("dns:")) {
    const hp = splitHostPort(target);
    if (!hp || hp.port === undefined) throw new RouterTargetError(target, "expected host:port or dns:///name:port");
    return { kind: "static", address: target };
  }
  // dns:[//authority/]host[:port]
  let rest = target.slice(4);
  let dnsServer: string | undefined;
  if (rest.startsWith("//")) {
    const slash = rest.indexOf("/", 2);
    if (slash < 0) throw new RouterTargetError(target, "expected dns:///name:port or dns://dns-server/name:port");
    const authority = rest.slice(2, slash);
    rest = rest.slice(slash + 1);
    if (authority) {
      const hp = splitHostPort(authority);
      if (!hp || isIP(hp.host) === 0)
        throw new RouterTargetError(target, `the DNS server ${JSON.stringify(authority)} must be an IP address with an optional port`);
      dnsServer = hp.port === undefined ? hp.host : `${isIP(hp.host) === 6 ? `[${hp.host}]` : hp.host}:${hp.port}`;
    }
  }
  const hp = splitHostPort(rest);
  if (!hp || !hp.host) throw new RouterTargetError(target, "names no host");
  return { kind: "dns", target, name: hp.host, port: hp.port ?? DEFAULT_DNS_PORT, dnsServer };
}

/** host:port, [v6]:port, or a bare host/v6 address; undefined when the port is not a port. */
function splitHostPort(s: string): { host: string; port: number | undefined } | undefined {
  let host = s;
  let port: string | undefined;
  if (s.startsWith("[")) {
    const end = s.indexOf("]");
    if (end < 0) return undefined;
    host = s.slice(1, end);
    if (s.length > end + 1) {
      if (s[end + 1] !== ":") return undefined;
      port = s.slice(end + 2);
    }
  } else if (isIP(s) !== 6) {
    const colon = s.lastIndexOf(":");
    if (colon >= 0) {
      host = s.slice(0, colon);
      port = s.slice(colon + 1);
    }
  }
  if (port === undefined) return { host, port: undefined };
  const n = Number(port);
  if (!/^\d+$/.test(port) || n < 1 || n > 65535) return undefined;
  return { host, port: n };
}

function join(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** A lookup of one name's addresses; injectable for tests of the bookkeeping. */
export type LookupAll = (name: string, dnsServer: string | undefined) => Promise<string[]>;

/** A and AAAA through node's resolver (c-ares), at the given server or the system's. */
export const lookupAll: LookupAll = async (name, dnsServer) => {
  if (isIP(name)) return [name];
  const resolver = new Resolver({ timeout: 2000, tries: 2 });
  if (dnsServer) resolver.setServers([dnsServer]);
  const [v4, v6] = await Promise.allSettled([resolver.resolve4(name), resolver.resolve6(name)]);
  const out = [...(v4.status === "fulfilled" ? v4.value : []), ...(v6.status === "fulfilled" ? v6.value : [])];
  if (out.length === 0) {
    const reason = v4.status === "rejected" ? (v4.reason as Error) : v6.status === "rejected" ? (v6.reason as Error) : undefined;
    throw new Error(`${name} has no address${reason ? ` (${(reason as NodeJS.ErrnoException).code ?? reason.message})` : ""}`);
  }
  return out;
};

export interface RouterSetOptions {
  /** Re-resolution period of dns targets. Default 30 s. */
  intervalMs?: number;
  /** Routers that appeared and routers that went away (never both empty). */
  onChange(added: RouterEndpoint[], removed: RouterEndpoint[]): void;
  logger?: (line: string) => void;
  lookup?: LookupAll;
}

/**
 * The current set of router endpoints of a list of targets. `start()` resolves once and
 * reports every router as added; after that a timer (only when a dns target is present)
 * and `refresh()` report the differences.
 */
export class RouterSet {
  private readonly targets: RouterTarget[];
  private readonly lookup: LookupAll;
  private current = new Map<string, RouterEndpoint>();
  /** The last good answer per dns target, kept when a lookup fails. */
  private readonly lastGood = new Map<string, RouterEndpoint[]>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private closed = false;
  private readonly failing = new Set<string>();

  constructor(
    spec: string | readonly string[],
    private readonly options: RouterSetOptions,
  ) {
    this.targets = parseRouterTargets(spec);
    this.lookup = options.lookup ?? lookupAll;
  }

  get hasDns(): boolean {
    return this.targets.some((t) => t.kind === "dns");
  }

  /** The routers known now. */
  get endpoints(): RouterEndpoint[] {
    return [...this.current.values()];
  }

  /**
   * Resolves every target and keeps re-resolving dns targets every `intervalMs`. Rejects
   * when a dns target has not resolved to anything yet; the timer keeps trying all the same
   * (a headless Service lists no router until one is ready), until `close()`.
   */
  async start(): Promise<RouterEndpoint[]> {
    if (this.hasDns && !this.closed && !this.timer) {
      this.timer = setInterval(() => void this.refresh(), this.options.intervalMs ?? 30_000);
      this.timer.unref();
    }
    await this.refresh();
    for (const t of this.targets) {
      if (t.kind === "dns" && !this.lastGood.has(t.target)) throw new RouterTargetError(t.target, "could not be resolved (see the log for why)");
    }
    return this.endpoints;
  }

  /** Resolves again now (coalesced: a refresh asked for during one runs once after it). */
  refresh(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.resolveOnce();
      } while (this.again && !this.closed);
    })().finally(() => (this.running = undefined));
    return this.running;
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
  }

  private async resolveOnce(): Promise<void> {
    const next = new Map<string, RouterEndpoint>();
    await Promise.all(
      this.targets.map(async (t) => {
        if (t.kind === "static") {
          next.set(t.address, { address: t.address });
          return;
        }
        try {
          const ips = await this.lookup(t.name, t.dnsServer);
          const eps = ips.map((ip) => ({ address: join(ip, t.port), authority: t.name }));
          this.lastGood.set(t.target, eps);
          if (this.failing.delete(t.target)) this.log(`${t.target} resolves again: ${ips.join(", ")}`);
        } catch (e) {
          // Keep what we had: losing DNS must not deregister the instance everywhere.
          if (!this.failing.has(t.target))
            this.log(`${t.target}: ${(e as Error).message}; keeping the last answer (${this.lastGood.get(t.target)?.length ?? 0} routers)`);
          this.failing.add(t.target);
        }
        for (const ep of this.lastGood.get(t.target) ?? []) next.set(ep.address, ep);
      }),
    );
    if (this.closed) return;
    const added = [...next.values()].filter((ep) => !this.current.has(ep.address));
    const removed = [...this.current.values()].filter((ep) => !next.has(ep.address));
    this.current = next;
    if (added.length || removed.length) this.options.onChange(added, removed);
  }

  private log(line: string): void {
    (this.options.logger ?? ((l) => console.error(`grpcrouter bridge: ${l}`)))(line);
  }
}
