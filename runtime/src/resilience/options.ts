// Resilience settings per service, their defaults, and validation with field-named errors.

/** gRPC status codes used here (google.rpc.Code numbering; the same as grpc-js `status`). */
export const StatusCode = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  DEADLINE_EXCEEDED: 4,
  RESOURCE_EXHAUSTED: 8,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
} as const;

export interface OutlierOptions {
  /** Consecutive failed calls that eject an instance (default 5; 0 disables ejection). */
  consecutiveFailures?: number;
  /** Status codes that count as a failure of the instance (default UNKNOWN, INTERNAL,
   *  UNAVAILABLE, DATA_LOSS, DEADLINE_EXCEEDED); any other status resets the count. */
  failureCodes?: readonly number[];
  /** First ejection time; the n-th ejection in a row lasts n × this (default 30 000 ms). */
  baseEjectionMs?: number;
  /** Cap of the growing ejection time (default 300 000 ms). */
  maxEjectionMs?: number;
  /** At most this share of the instances is ejected at once (default 50 %; at least one
   *  of two or more instances may always be ejected). */
  maxEjectionPercent?: number;
}

export interface RetryBudgetOptions {
  /** Retries allowed per request over the window (default 0.2: retries ≤ 20 % of calls). */
  ratio?: number;
  /** Retries always allowed per second of window, so a quiet service can still retry (default 1). */
  minRetriesPerSecond?: number;
  /** Sliding window over which requests and retries are counted (default 10 000 ms). */
  windowMs?: number;
}

export interface RetryOptions {
  /** Retry calls that failed with these codes when the method is idempotent
   *  (`idempotency_level` IDEMPOTENT or NO_SIDE_EFFECTS). Default [UNAVAILABLE]; [] disables. */
  retryOn?: readonly number[];
  /** Attempts in all, the first included, for those retries (default 3). */
  maxAttempts?: number;
  /** Retries of calls that never reached an instance (its stream was gone before the call
   *  was opened on it). These are always safe and cost the instances nothing, so they need
   *  neither idempotency nor budget; this only bounds them (default 5). */
  maxUndeliveredRetries?: number;
  /** Backoff before retry n: uniformly random in [0, min(initial × multiplier^(n-1), max)). */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  backoffMultiplier?: number;
  budget?: RetryBudgetOptions;
}

export interface ResilienceOptions {
  /** An instance that sends nothing (no frame, no Pong) for this long is taken out of
   *  rotation until it is heard from again. Set it to ~3 × the heartbeat interval
   *  (default 15 000 ms; 0 disables the check). */
  heartbeatTimeoutMs?: number;
  outlier?: OutlierOptions;
  /** Router-side cap of calls in flight per instance, on top of Hello.max_concurrent_calls
   *  (the smaller wins; default 0 = only the instance's own limit). */
  maxConcurrentCallsPerInstance?: number;
  /** Calls queued for one instance that is at its limit before RESOURCE_EXHAUSTED (default 100). */
  maxPendingPerInstance?: number;
  /** Calls with no usable instance wait (gRPC wait-for-ready) up to their deadline, or
   *  `maxWaitMs` when that comes first, for one to register or recover (default true).
   *  false fails them at once with UNAVAILABLE. `maxWaitMs` (default 10 000) is the longest
   *  any call waits, also in a full instance's queue; `maxWaiting` (default 1000) bounds
   *  the calls waiting for an instance, beyond which they get RESOURCE_EXHAUSTED. */
  waitForReady?: boolean | { maxWaitMs?: number; maxWaiting?: number };
  retry?: RetryOptions;
  /** Uniform [0,1) source for backoff jitter (default Math.random). */
  random?: () => number;
}

export interface ResolvedOptions {
  heartbeatTimeoutMs: number;
  outlier: Required<OutlierOptions>;
  maxConcurrentCallsPerInstance: number;
  maxPendingPerInstance: number;
  waitForReady: { enabled: boolean; maxWaitMs: number; maxWaiting: number };
  retry: Required<Omit<RetryOptions, "budget">> & { budget: Required<RetryBudgetOptions> };
  random: () => number;
}

export class ResilienceConfigError extends Error {
  constructor(
    readonly path: string,
    readonly problem: string,
  ) {
    super(`${path}: ${problem}`);
    this.name = "ResilienceConfigError";
  }
}

function num(v: unknown, path: string, def: number, min: number, max = Infinity, integer = false): number {
  if (v === undefined) return def;
  if (typeof v !== "number" || Number.isNaN(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    const what = integer ? "an integer" : "a number";
    throw new ResilienceConfigError(path, `must be ${what} ${min}..${max === Infinity ? "∞" : max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function codes(v: unknown, path: string, def: readonly number[]): readonly number[] {
  if (v === undefined) return def;
  if (!Array.isArray(v)) throw new ResilienceConfigError(path, `must be an array of gRPC status codes, got ${JSON.stringify(v)}`);
  v.forEach((c, i) => num(c, `${path}[${i}]`, 0, 1, 16, true));
  return v as number[];
}

/** Fills in defaults and checks ranges; errors name the field, e.g. `resilience.retry.maxAttempts`. */
export function resolveResilienceOptions(o: ResilienceOptions = {}, path = "resilience"): ResolvedOptions {
  const out = o.outlier ?? {};
  const r = o.retry ?? {};
  const b = r.budget ?? {};
  const wfr = o.waitForReady ?? true;
  const wfrObj = typeof wfr === "object" ? wfr : {};
  const baseEjectionMs = num(out.baseEjectionMs, `${path}.outlier.baseEjectionMs`, 30_000, 1);
  const initialBackoffMs = num(r.initialBackoffMs, `${path}.retry.initialBackoffMs`, 25, 0);
  return {
    heartbeatTimeoutMs: num(o.heartbeatTimeoutMs, `${path}.heartbeatTimeoutMs`, 15_000, 0),
    outlier: {
      consecutiveFailures: num(out.consecutiveFailures, `${path}.outlier.consecutiveFailures`, 5, 0, Infinity, true),
      failureCodes: codes(out.failureCodes, `${path}.outlier.failureCodes`, [
        StatusCode.UNKNOWN,
        StatusCode.INTERNAL,
        StatusCode.UNAVAILABLE,
        StatusCode.DATA_LOSS,
        StatusCode.DEADLINE_EXCEEDED,
      ]),
      baseEjectionMs,
      maxEjectionMs: num(out.maxEjectionMs, `${path}.outlier.maxEjectionMs`, Math.max(300_000, baseEjectionMs), baseEjectionMs),
      maxEjectionPercent: num(out.maxEjectionPercent, `${path}.outlier.maxEjectionPercent`, 50, 0, 100),
    },
    maxConcurrentCallsPerInstance: num(o.maxConcurrentCallsPerInstance, `${path}.maxConcurrentCallsPerInstance`, 0, 0, Infinity, true),
    maxPendingPerInstance: num(o.maxPendingPerInstance, `${path}.maxPendingPerInstance`, 100, 0, Infinity, true),
    waitForReady: {
      enabled: wfr !== false,
      maxWaitMs: num(wfrObj.maxWaitMs, `${path}.waitForReady.maxWaitMs`, 10_000, 0),
      maxWaiting: num(wfrObj.maxWaiting, `${path}.waitForReady.maxWaiting`, 1000, 0, Infinity, true),
    },
    retry: {
      retryOn: codes(r.retryOn, `${path}.retry.retryOn`, [StatusCode.UNAVAILABLE]),
      maxAttempts: num(r.maxAttempts, `${path}.retry.maxAttempts`, 3, 1, 10, true),
      maxUndeliveredRetries: num(r.maxUndeliveredRetries, `${path}.retry.maxUndeliveredRetries`, 5, 0, 100, true),
      initialBackoffMs,
      maxBackoffMs: num(r.maxBackoffMs, `${path}.retry.maxBackoffMs`, Math.max(500, initialBackoffMs), initialBackoffMs),
      backoffMultiplier: num(r.backoffMultiplier, `${path}.retry.backoffMultiplier`, 2, 1),
      budget: {
        ratio: num(b.ratio, `${path}.retry.budget.ratio`, 0.2, 0, 1000),
        minRetriesPerSecond: num(b.minRetriesPerSecond, `${path}.retry.budget.minRetriesPerSecond`, 1, 0),
        windowMs: num(b.windowMs, `${path}.retry.budget.windowMs`, 10_000, 100),
      },
    },
    random: o.random ?? Math.random,
  };
}
