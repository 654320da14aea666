// Live call statistics per service and per instance, computed from the call lifecycle the
// hub already sees (never by polling Prometheus): calls, errors and p50/p99 latency per
// second over the last five minutes, for the dashboard's charts.
//
// Cost per call is a map lookup, a logarithm and three increments; a second's latency
// histogram is folded into two numbers when the second closes, so memory is per series,
// not per call: 300 seconds × 16 bytes ≈ 5 KiB.

import { ByService } from "./by-service.js";

/** Seconds of history kept per series. */
export const STATS_SECONDS = 300;

/** Latency buckets: bucket i holds [MIN·R^i, MIN·R^(i+1)) ms; ±12 % resolution from 50 µs to ~1 h. */
const MIN_MS = 0.05;
const RATIO = 1.25;
const BUCKETS = 80;
const LOG_RATIO = Math.log(RATIO);

/** One closed second of one series. */
export interface StatsPointValue {
  service: string;
  /** "" for the whole service (every call, routed to an instance or not). */
  instanceId: string;
  calls: number;
  errors: number;
  /** Latency percentiles of the calls that ended in this second; 0 when none did. */
  p50Ms: number;
  p99Ms: number;
}

/** The last STATS_SECONDS closed seconds of one series, oldest first. */
export interface StatsHistory {
  service: string;
  instanceId: string;
  /** Unix second of calls[0]. */
  firstSecond: number;
  calls: number[];
  errors: number[];
  p50Ms: number[];
  p99Ms: number[];
}

class Series {
  /** The open second, collecting into `hist`, `count` and `errorCount`. */
  open = -1;
  count = 0;
  errorCount = 0;
  readonly hist = new Uint32Array(BUCKETS);
  /** Ring of closed seconds, indexed by second % STATS_SECONDS; `closedUpTo` is the newest. */
  readonly calls = new Uint32Array(STATS_SECONDS);
  readonly errors = new Uint32Array(STATS_SECONDS);
  readonly p50 = new Float32Array(STATS_SECONDS);
  readonly p99 = new Float32Array(STATS_SECONDS);
  closedUpTo = -1;
  /** Newest second with a call, to forget series that went quiet. */
  lastActive = -1;
  /** Second of the first call: a new series' history starts there, not 5 minutes back. */
  firstSecond = -1;

  constructor(
    readonly service: string,
    readonly instanceId: string,
  ) {}

  record(second: number, durationMs: number, failed: boolean): void {
    if (second !== this.open) this.rollTo(second);
    this.count++;
    if (failed) this.errorCount++;
    const b = durationMs <= MIN_MS ? 0 : Math.min(BUCKETS - 1, Math.floor(Math.log(durationMs / MIN_MS) / LOG_RATIO));
    this.hist[b]!++;
    this.lastActive = second;
    if (this.firstSecond < 0) this.firstSecond = second;
  }

  /** Closes every second before `second` (gaps become zeros) and opens `second`. */
  rollTo(second: number): void {
    if (second <= this.open) return;
    if (this.open >= 0) {
      const from = Math.max(this.closedUpTo + 1, this.open - STATS_SECONDS + 1);
      for (let s = from; s < this.open; s++) this.put(s, 0, 0, 0, 0);
      this.put(this.open, this.count, this.errorCount, this.percentile(0.5), this.percentile(0.99));
      const gapFrom = Math.max(this.open + 1, second - STATS_SECONDS);
      for (let s = gapFrom; s < second; s++) this.put(s, 0, 0, 0, 0);
    }
    this.closedUpTo = second - 1;
    this.open = second;
    this.count = 0;
    this.errorCount = 0;
    this.hist.fill(0);
  }

  private put(second: number, calls: number, errors: number, p50: number, p99: number): void {
    const i = second % STATS_SECONDS;
    this.calls[i] = calls;
    this.errors[i] = errors;
    this.p50[i] = p50;
    this.p99[i] = p99;
  }

  /** The q-quantile of the open second from its histogram (a bucket's geometric middle). */
  private percentile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.ceil(q * this.count);
    let seen = 0;
    for (let b = 0; b < BUCKETS; b++) {
      seen += this.hist[b]!;
      if (seen >= rank) return b === 0 ? MIN_MS : MIN_MS * Math.pow(RATIO, b + 0.5);
    }
    return MIN_MS * Math.pow(RATIO, BUCKETS);
  }

  point(second: number): StatsPointValue {
    const i = second % STATS_SECONDS;
    const inRange = second <= this.closedUpTo && second > this.closedUpTo - STATS_SECONDS;
    return {
      service: this.service,
      instanceId: this.instanceId,
      calls: inRange ? this.calls[i]! : 0,
      errors: inRange ? this.errors[i]! : 0,
      p50Ms: inRange ? this.p50[i]! : 0,
      p99Ms: inRange ? this.p99[i]! : 0,
    };
  }
}

/**
 * The statistics of every series. `record` is called once per ended call; `tick` once a
 * second closes the previous second of every series and returns its points, which the hub
 * streams to watchers; `history` is what a newly connected watcher's snapshot carries.
 */
export class CallStats {
  /** By service, then instance id ("" for the whole service). */
  private readonly series = new ByService<Series>();

  record(service: string, instanceId: string, durationMs: number, code: number, endMs: number): void {
    const second = Math.floor(endMs / 1000);
    const failed = code !== 0;
    this.get(service, "").record(second, durationMs, failed);
    if (instanceId) this.get(service, instanceId).record(second, durationMs, failed);
  }

  /** Closes the second before `nowMs`'s second; returns its points for series that are live. */
  tick(nowMs: number): { second: number; points: StatsPointValue[] } {
    const now = Math.floor(nowMs / 1000);
    const second = now - 1;
    const points: StatsPointValue[] = [];
    for (const s of this.series.values()) {
      s.rollTo(now);
      // A series quiet for the whole window has nothing left to draw: forget it (an
      // instance that went away, a service that was reloaded out).
      if (s.lastActive <= now - STATS_SECONDS) {
        this.series.delete(s.service, s.instanceId);
        continue;
      }
      points.push(s.point(second));
    }
    return { second, points };
  }

  /** Every series' closed seconds up to the one before `nowMs`'s second, oldest first. */
  history(nowMs: number): StatsHistory[] {
    const now = Math.floor(nowMs / 1000);
    const last = now - 1;
    const first = last - STATS_SECONDS + 1;
    const out: StatsHistory[] = [];
    for (const s of this.series.values()) {
      s.rollTo(now);
      // Only the seconds since the series began: a new instance has a short history.
      const from = Math.max(first, Math.min(s.firstSecond, last));
      const h: StatsHistory = { service: s.service, instanceId: s.instanceId, firstSecond: from, calls: [], errors: [], p50Ms: [], p99Ms: [] };
      for (let sec = from; sec <= last; sec++) {
        const p = s.point(sec);
        h.calls.push(p.calls);
        h.errors.push(p.errors);
        h.p50Ms.push(p.p50Ms);
        h.p99Ms.push(p.p99Ms);
      }
      out.push(h);
    }
    return out;
  }

  private get(service: string, instanceId: string): Series {
    let s = this.series.get(service, instanceId);
    if (!s) this.series.set(service, instanceId, (s = new Series(service, instanceId)));
    return s;
  }
}
