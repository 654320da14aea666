export interface Dnsmasq {
  /** "127.0.0.1:port", for `dns://127.0.0.1:port/name:port` targets or Resolver.setServers. */
  server: string;
  /** Replaces the answers: name → addresses; resolves once dnsmasq serves them. */
  set(records: Record<string, string[]>): Promise<void>;
  stop(): Promise<void>;
}
/** Starts dnsmasq on a free port of 127.0.0.1 answering `records` (name → addresses). */
export function startDnsmasq(records: Record<string, string[]>): Promise<Dnsmasq>;
