// Token-bucket rate limits of a routed service: one for the service and one per method,
// optionally one bucket per routing key or per metadata value (e.g. per tenant). A call
// takes a token from every bucket that applies, or from none: it is refused with
// RESOURCE_EXHAUSTED before it reaches the pool, so refused calls cost instances nothing.

/** Calls per second with a burst; `key` splits the limit into one bucket per value. */
export interface RateLimit {
  /** Tokens added per second (sustained calls per second); > 0. */
  perSecond: number;
  /** Bucket size: calls allowed at once after a quiet spell (default max(1, perSecond)). */
  burst?: number;
  /** One bucket per call's routing key, or per value of a request metadata key (lower-case).
   *  Calls without that value share one bucket. Default: one bucket for all calls. */
  key?: "routingKey" | { metadata: string };
}

/** A service-wide limit (the fields of RateLimit) and per-method ones (by proto name, "Say"). */
export interface RateLimitOptions extends Partial<RateLimit> {
  methods?: Record<string, RateLimit>;
}

export class RateLimitConfigError extends Error {
  constructor(
    readonly path: string,
    readonly problem: string,
  ) {
    super(`${path}: ${problem}`);
    this.name = "RateLimitConfigError";
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function onlyFields(obj: Record<string, unknown>, path: string, allowed: readonly string[]): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) throw new RateLimitConfigError(`${path}.${k}`, `unknown field (allowed here: ${allowed.join(", ")})`);
  }
}

function parseLimit(v: Record<string, unknown>, path: string): RateLimit {
  const perSecond = v.perSecond;
  if (typeof perSecond !== "number" || !(perSecond > 0) || !Number.isFinite(perSecond)) {
    throw new RateLimitConfigError(`${path}.perSecond`, `must be a number > 0 (calls per second), got ${JSON.stringify(perSecond)}`);
  }
  const out: RateLimit = { perSecond };
  if (v.burst !== undefined) {
    const b = v.burst;
    if (typeof b !== "number" || !Number.isInteger(b) || b < 1)
      throw new RateLimitConfigError(`${path}.burst`, `must be an integer >= 1, got ${JSON.stringify(b)}`);
    out.burst = b;
  }
  if (v.key !== undefined) {
    const k = v.key;
    if (k === "routingKey") out.key = k;
    else if (isObject(k) && Object.keys(k).length === 1 && typeof k.metadata === "string" && k.metadata !== "")
      out.key = { metadata: k.metadata.toLowerCase() };
    else throw new RateLimitConfigError(`${path}.key`, `must be "routingKey" or {"metadata": "<key>"}, got ${JSON.stringify(k)}`);
  }
  return out;
}

/** Validates rate limits (from code or a config file); errors name the field, e.g. `rateLimit.methods.Say.burst`.
 *  `methods` (when given) are checked against the service's method names. */
export function parseRateLimits(value: unknown, path = "rateLimit", methods?: readonly string[]): RateLimitOptions {
  if (!isObject(value)) throw new RateLimitConfigError(path, `must be an object {perSecond, burst?, key?, methods?}, got ${JSON.stringify(value)}`);
  onlyFields(value, path, ["perSecond", "burst", "key", "methods"]);
  const out: RateLimitOptions = {};
  if (value.perSecond !== undefined || value.burst !== undefined || value.key !== undefined) Object.assign(out, parseLimit(value, path));
  if (value.methods !== undefined) {
    const m = value.methods;
    if (!isObject(m))
      throw new RateLimitConfigError(`${path}.methods`, `must be an object of method name → {perSecond, burst?, key?}, got ${JSON.stringify(m)}`);
    out.methods = {};
    for (const [name, lim] of Object.entries(m)) {
      const p = `${path}.methods.${name}`;
      if (methods && !methods.includes(name))
        throw new RateLimitConfigError(p, `no method ${JSON.stringify(name)} in this service (one of ${methods.join(", ")})`);
      if (!isObject(lim)) throw new RateLimitConfigError(p, `must be an object {perSecond, burst?, key?}, got ${JSON.stringify(lim)}`);
      onlyFields(lim, p, ["perSecond", "burst", "key"]);
      out.methods[name] = parseLimit(lim, p);
    }
  }
  return out;
}

/** Buckets of one limit, one per key value; idle (full) buckets are dropped when there are many. */
class Buckets {
  private readonly burst: number;
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    readonly limit: RateLimit,
    readonly what: string,
  ) {
    this.burst = limit.burst ?? Math.max(1, limit.perSecond);
  }

  keyOf(call: LimitedCall): string {
    const k = this.limit.key;
    if (k === undefined) return "";
    if (k === "routingKey") return call.routingKey ?? "";
    return call.metadata?.(k.metadata) ?? "";
  }

  /** Tokens of the key's bucket now (refilled to `now`). */
  available(key: string, now: number): number {
    const b = this.buckets.get(key);
    if (!b) return this.burst;
    return Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.limit.perSecond);
  }

  take(key: string, now: number): void {
    if (this.buckets.size >= 10_000 && !this.buckets.has(key)) this.sweep(now);
    this.buckets.set(key, { tokens: this.available(key, now) - 1, at: now });
  }

  private sweep(now: number): void {
    for (const k of [...this.buckets.keys()]) if (this.available(k, now) >= this.burst) this.buckets.delete(k);
  }

  describe(key: string): string {
    return `rate limit of ${this.what} exceeded (${this.limit.perSecond} calls/s, burst ${this.burst})${this.whose(key)}`;
  }

  private whose(key: string): string {
    const k = this.limit.key;
    if (k === undefined) return "";
    const name = k === "routingKey" ? "a routing key" : k.metadata;
    if (key === "") return ` for calls without ${name}`;
    return k === "routingKey" ? ` for routing key ${JSON.stringify(key)}` : ` for ${name}=${JSON.stringify(key)}`;
  }
}

export interface LimitedCall {
  /** Proto method name, "Say". */
  method: string;
  routingKey?: string | undefined;
  metadata?: ((key: string) => string | undefined) | undefined;
}

/** The rate limits of one service. `now` is injectable for tests (ms). */
export class RateLimiter {
  private readonly service: Buckets | undefined;
  private readonly methods = new Map<string, Buckets>();

  constructor(
    serviceName: string,
    options: RateLimitOptions,
    private readonly now: () => number = Date.now,
  ) {
    if (options.perSecond !== undefined) this.service = new Buckets(options as RateLimit, serviceName);
    for (const [m, lim] of Object.entries(options.methods ?? {})) this.methods.set(m, new Buckets(lim, `${serviceName}/${m}`));
  }

  /** Takes a token for the call from every bucket that applies; the refusal message when one is empty (then none is taken). */
  admit(call: LimitedCall): string | undefined {
    const now = this.now();
    const applying: Array<[Buckets, string]> = [];
    const m = this.methods.get(call.method);
    if (m) applying.push([m, m.keyOf(call)]);
    if (this.service) applying.push([this.service, this.service.keyOf(call)]);
    for (const [b, key] of applying) if (b.available(key, now) < 1) return b.describe(key);
    for (const [b, key] of applying) b.take(key, now);
    return undefined;
  }
}
