// Changing a running service's balancer and resilience settings without a new pool: the
// pool, its instances (health, ejections, outstanding counts, queues) and the calls in
// flight stay; only what decides about NEW picks and attempts changes.
import type { Balancer, Candidate, Pick, PickContext } from "../balancer/index.js";
import { RetryPolicy, type InstancePool, type ResolvedOptions } from "../resilience/index.js";

/** The pool's balancer for its whole life; `current` is swapped by Router.configure. A new
 *  balancer starts without groups or rings and builds them from the candidates on its first pick. */
export class SwitchableBalancer implements Balancer {
  constructor(public current: Balancer) {}

  pick(candidates: readonly Candidate[], ctx: PickContext): Pick | undefined {
    return this.current.pick(candidates, ctx);
  }

  describe(): string {
    return this.current.describe();
  }
}

/**
 * Writes new resolved options into the pool's own options object. The pool, its health
 * monitor, each instance's outlier state and the retry policy hold references to that
 * object and its parts (outlier, waitForReady, retry, retry.budget) and read them on every
 * decision, so updating them in place is what makes new settings apply to running instances.
 * The retry budget's window size is fixed when the budget is made: a new window starts a
 * new budget (its counts start from zero).
 */
export function applyResolvedOptions(pool: InstancePool, next: ResolvedOptions): void {
  const o = pool.options as { -readonly [K in keyof ResolvedOptions]: ResolvedOptions[K] };
  const newWindow = o.retry.budget.windowMs !== next.retry.budget.windowMs;
  o.heartbeatTimeoutMs = next.heartbeatTimeoutMs;
  Object.assign(o.outlier, next.outlier);
  o.maxConcurrentCallsPerInstance = next.maxConcurrentCallsPerInstance;
  o.maxPendingPerInstance = next.maxPendingPerInstance;
  Object.assign(o.waitForReady, next.waitForReady);
  Object.assign(o.retry.budget, next.retry.budget);
  Object.assign(o.retry, { ...next.retry, budget: o.retry.budget });
  if (newWindow) (pool as { retry: RetryPolicy }).retry = new RetryPolicy(o.retry, pool.clock, o.random);
}
