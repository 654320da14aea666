// Outlier detection for one instance: consecutive failures eject it for a time that grows
// while it keeps failing after each return, and shrinks again while it behaves.
import type { ResolvedOptions } from "./options.js";

export class OutlierState {
  /** Failed calls in a row (reset by any call that does not fail). */
  consecutiveFailures = 0;
  /** Ejections counted for the growing ejection time (decays while healthy). */
  ejections = 0;
  /** Clock time the current ejection ends, or undefined when not ejected. */
  ejectedUntil: number | undefined;
  /** The status code of the last failure, for the reason shown to operators. */
  lastFailureCode = 0;
  private returnedAt: number | undefined;

  constructor(private readonly options: ResolvedOptions["outlier"]) {}

  get ejected(): boolean {
    return this.ejectedUntil !== undefined;
  }

  /** Records how a delivered call ended; true when the failure threshold is now reached. */
  record(code: number): boolean {
    if (!this.options.failureCodes.includes(code)) {
      this.consecutiveFailures = 0;
      return false;
    }
    this.consecutiveFailures++;
    this.lastFailureCode = code;
    return this.options.consecutiveFailures > 0 && this.consecutiveFailures >= this.options.consecutiveFailures && !this.ejected;
  }

  /**
   * Starts an ejection and returns how long it lasts: base × n for the n-th ejection, where
   * n drops by one for every base period the instance stayed in since its last return
   * (Envoy's rule), so a flapping instance is kept out longer each time and a recovered
   * one is forgiven.
   */
  eject(now: number): number {
    const base = this.options.baseEjectionMs;
    if (this.returnedAt !== undefined) this.ejections = Math.max(0, this.ejections - Math.floor((now - this.returnedAt) / base));
    this.ejections++;
    const ms = Math.min(base * this.ejections, this.options.maxEjectionMs);
    this.ejectedUntil = now + ms;
    return ms;
  }

  /** The ejection time is over: the instance takes calls again with a clean failure count. */
  restore(now: number): void {
    this.ejectedUntil = undefined;
    this.returnedAt = now;
    this.consecutiveFailures = 0;
  }
}

/** How many of `size` instances may be ejected at once. */
export function maxEjected(size: number, percent: number): number {
  const byPercent = Math.floor((size * percent) / 100);
  // With two or more instances one may always go: otherwise the 10–50 % defaults would
  // protect a single bad instance of a small fleet forever.
  return percent > 0 && size >= 2 ? Math.max(1, byPercent) : byPercent;
}
