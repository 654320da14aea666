// gRPC's connection backoff (doc/connection-backoff.md): 1 s, ×1.6 per attempt, ±20 %
// jitter, at most 120 s. The base is configurable so that tests need not wait seconds.

export interface BackoffOptions {
  initialMs?: number;
  multiplier?: number;
  maxMs?: number;
  /** Fraction of the delay added or removed at random. */
  jitter?: number;
}

export function backoffDelay(attempt: number, o: BackoffOptions = {}, random: () => number = Math.random): number {
  const initial = o.initialMs ?? 1000;
  const multiplier = o.multiplier ?? 1.6;
  const max = o.maxMs ?? 120_000;
  const jitter = o.jitter ?? 0.2;
  const base = Math.min(initial * Math.pow(multiplier, attempt), max);
  return Math.max(0, base * (1 + jitter * (random() * 2 - 1)));
}
