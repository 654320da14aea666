// Limits on registrations, so that nobody can make the router spend its memory and time on
// Register streams: at most `perConnection` open Register streams per HTTP/2 connection and
// `perAddress` per remote address (streams that have not said Hello yet count too), and at
// most `hellosPerSecond` Hellos checked per second over the router (a token bucket holding
// one second's worth). Streams over a limit end RESOURCE_EXHAUSTED at once, before any work;
// a Hello over the rate is turned away the same way, and a bridge retries with its backoff.
// A Hello turned away for the rate also gets a time to come back (`pushbackMs`, sent as
// `grpc-retry-pushback-ms`), which the bridge honours instead of its backoff: after a router
// restart, a wave of thousands of bridges is spread over the seconds the router needs to
// admit them at its rate, instead of coming back as a wave again.

/** Trailer of a turned-away Register stream (gRPC's retry pushback): milliseconds to wait before dialling again. */
export const PUSHBACK_KEY = "grpc-retry-pushback-ms";

/** The longest a router asks a bridge to wait before it tries again. */
export const MAX_PUSHBACK_MS = 60_000;

export interface RegistrationLimitOptions {
  /** Register streams open at once on one connection. Default 256. */
  perConnection?: number;
  /** Register streams open at once from one remote address (all its connections). Default 4096. */
  perAddress?: number;
  /**
   * Hellos checked per second, router-wide; bursts up to one second's worth. Default 2000:
   * a turned-away Hello costs the router about what an accepted one does (the stream, its
   * headers, the Hello), so the limit guards the authorize hook rather than the CPU, and a
   * low one makes an honest reconnect storm retry in waves (docs/performance.md).
   */
  hellosPerSecond?: number;
}

/** "ipv4:10.0.0.7:51234", "10.0.0.7:51234", "[::1]:5000", "::1:5000" → the address without its port. */
function addressOf(peer: string): string {
  const p = peer.replace(/^ipv[46]:/, "");
  const i = p.lastIndexOf(":");
  const host = i > 0 ? p.slice(0, i) : p;
  return host.replace(/^\[(.*)\]$/, "$1");
}

export class RegistrationLimits {
  readonly perConnection: number;
  readonly perAddress: number;
  readonly hellosPerSecond: number;
  private readonly byConnection = new Map<string, number>();
  private readonly byAddress = new Map<string, number>();
  private tokens: number;
  private refilledAt = Date.now();
  /** Hellos turned away and told to come back, not yet due (drains at the Hello rate). */
  private backlog = 0;
  private backlogAt = Date.now();
  /** Refusals so far, by limit (for stats and tests). */
  readonly refused = { perConnection: 0, perAddress: 0, hellos: 0 };

  constructor(options: RegistrationLimitOptions = {}) {
    this.perConnection = positive(options.perConnection, 256, "perConnection");
    this.perAddress = positive(options.perAddress, 4096, "perAddress");
    this.hellosPerSecond = positive(options.hellosPerSecond, 2000, "hellosPerSecond");
    this.tokens = this.hellosPerSecond;
  }

  /**
   * A Register stream from `peer` (the connection, "address:port") opened: undefined and
   * counted when it may stay (call `close(peer)` when it ends), else why not.
   */
  open(peer: string): string | undefined {
    const address = addressOf(peer);
    const onConnection = this.byConnection.get(peer) ?? 0;
    const fromAddress = this.byAddress.get(address) ?? 0;
    if (onConnection >= this.perConnection) {
      this.refused.perConnection++;
      return `too many Register streams on one connection (limit ${this.perConnection})`;
    }
    if (fromAddress >= this.perAddress) {
      this.refused.perAddress++;
      return `too many Register streams from ${address} (limit ${this.perAddress})`;
    }
    this.byConnection.set(peer, onConnection + 1);
    this.byAddress.set(address, fromAddress + 1);
    return undefined;
  }

  close(peer: string): void {
    const address = addressOf(peer);
    decrement(this.byConnection, peer);
    decrement(this.byAddress, address);
  }

  /** A Hello is to be checked now: true when the rate allows it. */
  takeHello(now = Date.now()): boolean {
    this.tokens = Math.min(this.hellosPerSecond, this.tokens + ((now - this.refilledAt) / 1000) * this.hellosPerSecond);
    this.refilledAt = now;
    if (this.tokens < 1) {
      this.refused.hellos++;
      return false;
    }
    this.tokens--;
    return true;
  }

  /**
   * When a Hello just turned away for the rate should come back: after the ones told
   * before it, at the rate Hellos are admitted, plus up to half again at random so that
   * they do not line up. Never earlier than its turn: one that comes early finds no token
   * and is turned away again, while one that comes late finds its token kept in the bucket
   * (which holds a second's worth). At most MAX_PUSHBACK_MS.
   */
  pushbackMs(now = Date.now(), random: () => number = Math.random): number {
    this.backlog = Math.max(0, this.backlog - ((now - this.backlogAt) / 1000) * this.hellosPerSecond) + 1;
    this.backlogAt = now;
    const due = (this.backlog / this.hellosPerSecond) * 1000;
    return Math.round(Math.min(MAX_PUSHBACK_MS, due * (1 + 0.5 * random())));
  }
}

function decrement(map: Map<string, number>, key: string): void {
  const n = (map.get(key) ?? 0) - 1;
  if (n <= 0) map.delete(key);
  else map.set(key, n);
}

function positive(v: number | undefined, dflt: number, name: string): number {
  if (v === undefined) return dflt;
  if (!Number.isFinite(v) || v < 1) throw new Error(`registrationLimits.${name}: expected a number ≥ 1, got ${v}`);
  return v;
}
