// Instance health for one service: heartbeats, the instance's own HealthReport, drain, and
// outlier ejection. Usable alone (a router with its own dispatch adds `health.ok` to its
// availability check) or through InstancePool, which builds on it.
import { HealthReport_Status } from "../gen/grpcrouter/v1/tunnel_pb.js";
import { systemClock, type Clock, type TimerHandle } from "./clock.js";
import { resolveResilienceOptions, type ResilienceOptions, type ResolvedOptions } from "./options.js";
import { OutlierState, maxEjected } from "./outlier.js";
import { codeName } from "./retry.js";

/** The AdminHub's health vocabulary (its HealthInput). */
export type HealthState = "serving" | "not_serving" | "draining" | "ejected";

export interface HealthMonitorOptions {
  clock?: Clock;
  /** Raw options, or already resolved ones (InstancePool shares its own). */
  resilience?: ResilienceOptions | ResolvedOptions;
  /** Called when an instance's state changes: it left or re-entered rotation. Read
   *  `health.ok`, `health.state` and `health.reason` there; refresh your availability
   *  flag, publish the change, and on `ok` try your waiting calls again. */
  onChange?: (health: InstanceHealth) => void;
}

function isResolved(o: ResilienceOptions | ResolvedOptions): o is ResolvedOptions {
  return typeof (o as ResolvedOptions).waitForReady === "object" && "enabled" in (o as ResolvedOptions).waitForReady;
}

/** The health of every instance of one service. */
export class HealthMonitor {
  readonly options: ResolvedOptions;
  readonly clock: Clock;
  private readonly onChange: ((h: InstanceHealth) => void) | undefined;
  /** A Set: a join or a leave is O(1) (10,000 instances join a router at once). */
  private readonly members = new Set<InstanceHealth>();
  private sweepTimer: TimerHandle | undefined;
  private closed = false;

  constructor(options: HealthMonitorOptions = {}) {
    const r = options.resilience ?? {};
    this.options = isResolved(r) ? r : resolveResilienceOptions(r);
    this.clock = options.clock ?? systemClock;
    this.onChange = options.onChange;
  }

  /** Starts tracking an instance (once per instance id); it starts SERVING and heard from now. */
  add(id: string): InstanceHealth {
    const h = new InstanceHealth(this, id);
    this.members.add(h);
    this.armSweep();
    return h;
  }

  /** Stops tracking (the instance's last stream is gone); its ejection timer is cancelled. */
  remove(h: InstanceHealth): void {
    h.removed = true;
    if (h.ejectionTimer) this.clock.clearTimeout(h.ejectionTimer);
    h.ejectionTimer = undefined;
    this.members.delete(h);
  }

  get size(): number {
    return this.members.size;
  }

  /** Stops every timer. */
  close(): void {
    this.closed = true;
    if (this.sweepTimer) this.clock.clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
    for (const m of this.members) {
      if (m.ejectionTimer) this.clock.clearTimeout(m.ejectionTimer);
      m.ejectionTimer = undefined;
    }
  }

  /** @internal */
  changed(h: InstanceHealth): void {
    if (h.removed) return;
    const before = h.lastState;
    const now = h.state;
    const ok = h.ok;
    if (now === before && ok === h.lastOk) return;
    h.lastState = now;
    h.lastOk = ok;
    this.onChange?.(h);
  }

  /** @internal Ejects `h` unless too many instances are out already. */
  tryEject(h: InstanceHealth): void {
    let ejected = 0;
    for (const m of this.members) if (m.outlier.ejected) ejected++;
    if (ejected >= maxEjected(this.members.size, this.options.outlier.maxEjectionPercent)) return;
    const ms = h.outlier.eject(this.clock.now());
    h.ejectionTimer = this.clock.setTimeout(() => {
      h.ejectionTimer = undefined;
      if (h.removed) return;
      h.outlier.restore(this.clock.now());
      this.changed(h);
    }, ms);
    this.changed(h);
  }

  /** One timer per service, only while it has instances: marks the silent ones stale. */
  private armSweep(): void {
    const timeout = this.options.heartbeatTimeoutMs;
    if (timeout === 0 || this.sweepTimer !== undefined || this.closed || this.members.size === 0) return;
    this.sweepTimer = this.clock.setTimeout(
      () => {
        this.sweepTimer = undefined;
        const now = this.clock.now();
        for (const m of this.members) {
          const stale = now - m.lastSeen > timeout;
          if (stale !== m.stale) {
            m.stale = stale;
            this.changed(m);
          }
        }
        this.armSweep();
      },
      Math.max(10, timeout / 4),
    );
  }
}

/** One instance's health. `ok` = may take calls (capacity aside). */
export class InstanceHealth {
  readonly outlier: OutlierState;
  /** @internal */ lastSeen: number;
  /** @internal */ stale = false;
  /** @internal */ removed = false;
  /** @internal */ ejectionTimer: TimerHandle | undefined;
  /** @internal */ lastState: HealthState = "serving";
  /** @internal */ lastOk = true;
  private reported = HealthReport_Status.SERVING;
  private draining = false;
  /** An operator's drain (Admin Act): like the instance's own, but undone by `setHeld`. */
  private operatorDrained = false;
  /** An operator's ejection: out of rotation until restored, no timer. */
  private operatorEjected = false;

  constructor(
    private readonly monitor: HealthMonitor,
    readonly id: string,
  ) {
    this.outlier = new OutlierState(monitor.options.outlier);
    this.lastSeen = monitor.clock.now();
  }

  /** Anything arrived from the instance (a Pong, a response frame, a window update). Cheap:
   *  call it for every message read from any of its Register streams. */
  heartbeat(): void {
    this.lastSeen = this.monitor.clock.now();
    if (this.stale) {
      this.stale = false;
      this.monitor.changed(this);
    }
  }

  /** The instance's own HealthReport. UNSPECIFIED counts as SERVING. */
  report(status: HealthReport_Status | "SERVING" | "NOT_SERVING"): void {
    const s = status === "NOT_SERVING" || status === HealthReport_Status.NOT_SERVING ? HealthReport_Status.NOT_SERVING : HealthReport_Status.SERVING;
    this.heartbeat();
    if (s === this.reported) return;
    this.reported = s;
    this.monitor.changed(this);
  }

  /** The instance is draining: it takes no new calls (there is no way back). */
  drain(): void {
    if (this.draining) return;
    this.draining = true;
    this.monitor.changed(this);
  }

  /** An operator drains the instance (no new calls; calls in flight finish) or undoes it. */
  setOperatorDrain(on: boolean): void {
    if (this.operatorDrained === on) return;
    this.operatorDrained = on;
    this.monitor.changed(this);
  }

  /**
   * An operator ejects the instance (until restored) or restores it: restoring also ends an
   * outlier ejection now, with a clean failure count.
   */
  setOperatorEject(on: boolean): void {
    if (!on && this.outlier.ejected) {
      if (this.ejectionTimer) this.monitor.clock.clearTimeout(this.ejectionTimer);
      this.ejectionTimer = undefined;
      this.outlier.restore(this.monitor.clock.now());
    }
    this.operatorEjected = on;
    this.monitor.changed(this);
  }

  get drainedByOperator(): boolean {
    return this.operatorDrained;
  }

  get ejectedByOperator(): boolean {
    return this.operatorEjected;
  }

  /** How a call the instance received ended (a gRPC status code; 0 = OK). Failures in a
   *  row eject it; anything else resets the count. Do not report calls that never reached
   *  the instance, nor ones the client cancelled. */
  recordResult(code: number): void {
    if (this.removed) return;
    if (this.outlier.record(code)) this.monitor.tryEject(this);
  }

  /** May take calls, capacity aside: heard from, SERVING, not draining, not ejected. */
  get ok(): boolean {
    return (
      !this.removed &&
      !this.draining &&
      !this.operatorDrained &&
      !this.operatorEjected &&
      !this.stale &&
      this.reported === HealthReport_Status.SERVING &&
      !this.outlier.ejected
    );
  }

  get state(): HealthState {
    if (this.draining || this.operatorDrained) return "draining";
    if (this.outlier.ejected || this.operatorEjected) return "ejected";
    if (this.stale || this.reported !== HealthReport_Status.SERVING) return "not_serving";
    return "serving";
  }

  /** Why the instance is out of rotation, in words ("" when it is in). */
  get reason(): string {
    const now = this.monitor.clock.now();
    const o = this.outlier;
    if (this.draining) return "draining";
    if (this.operatorDrained) return "drained by an operator";
    if (this.operatorEjected) return "ejected by an operator";
    if (o.ejected)
      return `ejected after ${o.consecutiveFailures} consecutive failures (last ${codeName(o.lastFailureCode)}), back in ${Math.ceil((o.ejectedUntil! - now) / 1000)} s`;
    if (this.stale) return `no heartbeat for ${Math.round((now - this.lastSeen) / 1000)} s`;
    if (this.reported !== HealthReport_Status.SERVING) return "the instance reported NOT_SERVING";
    return "";
  }
}
