// The instances of one service as the router sees them, and the admission of calls to them:
// health (heartbeats, HealthReport, drain), outlier ejection, per-instance concurrency
// limits with bounded queues, wait-for-ready, and retries under a budget.
import type { Balancer, Candidate, Pick, PickContext } from "../balancer/types.js";
import type { HealthReport_Status } from "../gen/grpcrouter/v1/tunnel_pb.js";
import { systemClock, type Clock, type TimerHandle } from "./clock.js";
import { HealthMonitor, type HealthState, type InstanceHealth } from "./health.js";
import { StatusCode, resolveResilienceOptions, type ResilienceOptions, type ResolvedOptions } from "./options.js";
import { RetryPolicy, type AttemptResult, type CallRetries, type RetryBudget, type RetryDecision } from "./retry.js";

export interface InstanceInit {
  /** Hello.instance_id */
  id: string;
  labels?: Readonly<Record<string, string>>;
  /** Hello.weight; 0 means 1. */
  weight?: number;
  /** Hello.max_concurrent_calls; 0 means no limit. */
  maxConcurrentCalls?: number;
}

export interface InstanceStatus {
  id: string;
  health: HealthState;
  /** Why the instance is not serving, in words ("" when it is). */
  reason: string;
  /** May take a new call right now (healthy and below its concurrency limit). */
  available: boolean;
  outstanding: number;
  /** Calls queued for this instance while it is at its limit. */
  pending: number;
  /** Effective limit of calls in flight; 0 = none. */
  maxConcurrentCalls: number;
  consecutiveFailures: number;
  ejections: number;
  /** Clock time the current ejection ends. */
  ejectedUntil?: number;
}

/** A call the pool refuses, with the gRPC status to end it with. It has the shape grpc-js
 *  accepts as a server error, so a handler may pass it to its callback or `emit("error")`. */
export class CallRejectedError extends Error {
  readonly details: string;
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = "CallRejectedError";
    this.details = message;
  }
}

export interface InstancePoolOptions {
  /** Fully-qualified service name, for messages. */
  service: string;
  balancer: Balancer;
  clock?: Clock;
  resilience?: ResilienceOptions;
  /** Called when an instance's health changes (to publish it, e.g. AdminHub.instanceChanged). */
  onHealthChange?: (status: InstanceStatus) => void;
}

export interface CallInit {
  /** Full method path, e.g. "/demo.v1.Echo/Say". */
  method: string;
  /** isIdempotent(descMethod): whether UNAVAILABLE may be retried. */
  idempotent?: boolean;
  routingKey?: string | undefined;
  metadata?: ((key: string) => string | undefined) | undefined;
  /** Clock time (ms; Date.now() scale for the system clock) of the call's deadline;
   *  undefined or Infinity for none. */
  deadline?: number | undefined;
  /** Aborts waiting (queue, wait-for-ready, backoff) when the client cancels. */
  signal?: CancelSignal | undefined;
}

/** What the pool uses of an abort signal; any AbortSignal is one (the router passes a lighter one). */
export interface CancelSignal {
  readonly aborted: boolean;
  addEventListener(type: "abort", listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: "abort", listener: () => void): void;
}

interface Waiter {
  call: PoolCall;
  resolve: (a: CallAttempt) => void;
  reject: (e: CallRejectedError) => void;
  /** Ready list (no usable instance) or the queue of one full instance. */
  where: "ready" | PooledInstance;
  since: number;
  timer: TimerHandle | undefined;
  onAbort: (() => void) | undefined;
}

/** One registered instance. The router keeps the handle from `pool.add` and reports to it. */
export class PooledInstance {
  readonly candidate: Candidate;
  readonly health: InstanceHealth;
  /** @internal */ queue: Waiter[] = [];
  /** @internal */ removed = false;
  private helloLimit: number;

  constructor(
    private readonly pool: InstancePool,
    init: InstanceInit,
    health: InstanceHealth,
  ) {
    this.candidate = { id: init.id, labels: init.labels ?? {}, weight: init.weight ?? 1, outstanding: 0, healthy: true };
    this.health = health;
    this.helloLimit = init.maxConcurrentCalls ?? 0;
  }

  get id(): string {
    return this.candidate.id;
  }

  /** Any frame (a Pong, a response, a window update) arrived from this instance. Cheap:
   *  call it for every message read from any of its Register streams. */
  heartbeat(): void {
    this.health.heartbeat();
  }

  /** The instance's own HealthReport. UNSPECIFIED counts as SERVING. */
  report(status: HealthReport_Status | "SERVING" | "NOT_SERVING"): void {
    this.health.report(status);
  }

  /** The instance said Drain: no new calls; calls in flight finish. Queued calls move on. */
  drain(): void {
    this.health.drain();
  }

  setWeight(weight: number): void {
    this.candidate.weight = weight;
  }

  /** An operator's drain (true) or its undoing (false); queued calls move on at once. */
  setOperatorDrain(on: boolean): void {
    this.health.setOperatorDrain(on);
  }

  /** An operator's ejection (true) or restore (false, which also ends an outlier ejection). */
  setOperatorEject(on: boolean): void {
    this.health.setOperatorEject(on);
  }

  /** A newer Hello with other labels: balancers regroup (subsets, splits) on the next pick. */
  setLabels(labels: Readonly<Record<string, string>>): void {
    (this.candidate as { labels: Readonly<Record<string, string>> }).labels = { ...labels };
    this.pool.membershipChanged();
  }

  setMaxConcurrentCalls(limit: number): void {
    this.helloLimit = limit;
    this.pool.update(this);
  }

  /** Effective concurrency limit: the smaller of Hello's and the router's; 0 = none. */
  get maxConcurrentCalls(): number {
    const a = this.helloLimit;
    const b = this.pool.options.maxConcurrentCallsPerInstance;
    if (a > 0 && b > 0) return Math.min(a, b);
    return a > 0 ? a : b;
  }

  /** Healthy, ignoring whether it has room for another call. */
  get ok(): boolean {
    return !this.removed && this.health.ok;
  }

  /** @internal */ get hasRoom(): boolean {
    const max = this.maxConcurrentCalls;
    return max === 0 || this.candidate.outstanding < max;
  }

  /** May take a new call now. */
  get available(): boolean {
    return this.ok && this.hasRoom && this.queue.length === 0;
  }

  status(): InstanceStatus {
    const o = this.health.outlier;
    const s: InstanceStatus = {
      id: this.id,
      health: this.health.state,
      reason: this.health.reason,
      available: this.available,
      outstanding: this.candidate.outstanding,
      pending: this.queue.length,
      maxConcurrentCalls: this.maxConcurrentCalls,
      consecutiveFailures: o.consecutiveFailures,
      ejections: o.ejections,
    };
    if (o.ejectedUntil !== undefined) s.ejectedUntil = o.ejectedUntil;
    return s;
  }
}

/** One attempt of a call on one instance. The router runs it, then calls `finish` exactly once. */
export class CallAttempt {
  private done = false;
  constructor(
    private readonly call: PoolCall,
    readonly instance: PooledInstance,
    /** The balancer's choice and reason (for the debug panel). */
    readonly pick: Pick,
    /** 1 for the first attempt. */
    readonly number: number,
    /** Time spent queued or waiting for an instance, ms. */
    readonly waitedMs: number,
  ) {}

  get candidate(): Candidate {
    return this.instance.candidate;
  }

  /**
   * Frees the instance's slot, feeds outlier detection and decides about a retry. When
   * `retry` is true, call `call.next()` again (it backs off first); otherwise end the
   * client's call with this attempt's outcome.
   */
  finish(result: AttemptResult): RetryDecision {
    if (this.done) throw new Error("CallAttempt.finish called twice");
    this.done = true;
    return this.call.pool.finish(this, this.call, result);
  }
}

/** A call as the pool tracks it across attempts. */
export class PoolCall {
  /** @internal */ readonly ctx: PickContext;
  /** @internal */ tried: Set<string> | undefined;
  /** @internal */ delayMs = 0;
  /** @internal */ readonly retries: CallRetries;
  /** Attempts started so far. */
  attempts = 0;

  constructor(
    /** @internal */ readonly pool: InstancePool,
    readonly init: CallInit,
    retries: CallRetries,
  ) {
    this.ctx = { method: init.method, routingKey: init.routingKey, metadata: init.metadata };
    this.retries = retries;
  }

  /** Waits (backoff, queue, wait-for-ready) and resolves with the next attempt, or rejects
   *  with a CallRejectedError (UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, CANCELLED). */
  async next(): Promise<CallAttempt> {
    if (this.delayMs > 0) {
      const ms = this.delayMs;
      this.delayMs = 0;
      await this.pool.sleep(this, ms);
    }
    return this.pool.admit(this);
  }

  /**
   * The first attempt, at once when an instance has room now: the attempt itself, else the
   * promise next() would give. Throws the CallRejectedError next() would reject with. (The
   * async next() costs a promise, an async frame and a microtask per call.)
   */
  first(): CallAttempt | Promise<CallAttempt> {
    if (this.delayMs > 0) return this.next();
    return this.pool.admit(this);
  }

  /** @internal */ get deadline(): number {
    const d = this.init.deadline;
    return d === undefined ? Infinity : d;
  }

  /** @internal The call is over for the client: it cannot take another attempt. */
  overReason(now: number): CallRejectedError | undefined {
    if (this.init.signal?.aborted) return new CallRejectedError(StatusCode.CANCELLED, "the call was cancelled while waiting for an instance");
    if (now >= this.deadline) return new CallRejectedError(StatusCode.DEADLINE_EXCEEDED, "deadline exceeded while waiting for an instance");
    return undefined;
  }
}

/**
 * The instances of one service and the admission of calls to them. `candidates` is the
 * copy-on-write array the balancer sees; the pool owns each candidate's `outstanding` and
 * `healthy` (healthy = may take a new call now: serving, heard from, not ejected, not
 * draining, below its concurrency limit).
 */
export class InstancePool {
  readonly options: ResolvedOptions;
  readonly clock: Clock;
  private retryPolicy: RetryPolicy;
  private readonly balancer: Balancer;
  private readonly service: string;
  private readonly onHealthChange: ((s: InstanceStatus) => void) | undefined;
  /** Members in join order. A join or a leave is O(1): the arrays below are rebuilt on their next use. */
  private readonly memberSet = new Set<PooledInstance>();
  private memberArray: PooledInstance[] | undefined = [];
  private listCache: readonly Candidate[] | undefined = [];

  private get members(): PooledInstance[] {
    return (this.memberArray ??= [...this.memberSet]);
  }

  /** A new array after every join or leave: that is how balancers notice membership changes. */
  private get list(): readonly Candidate[] {
    return (this.listCache ??= this.members.map((m) => m.candidate));
  }
  private readonly byId = new Map<string, PooledInstance>();
  private ready: Waiter[] = [];
  /** Instances that had calls queued on them (some may be empty now): what a join wakes,
   *  without visiting every member. */
  private readonly queuedOn = new Set<PooledInstance>();
  private readonly monitor: HealthMonitor;
  private closed = false;

  constructor(options: InstancePoolOptions) {
    this.options = resolveResilienceOptions(options.resilience);
    this.clock = options.clock ?? systemClock;
    this.balancer = options.balancer;
    this.service = options.service;
    this.onHealthChange = options.onHealthChange;
    this.retryPolicy = new RetryPolicy(this.options.retry, this.clock, this.options.random);
    this.monitor = new HealthMonitor({
      clock: this.clock,
      resilience: this.options,
      onChange: (h) => {
        const inst = this.byId.get(h.id);
        if (inst && inst.health === h) this.update(inst, true);
      },
    });
  }

  get retry(): RetryPolicy {
    return this.retryPolicy;
  }

  /**
   * New settings for new decisions, written into the pool's own options object: the health
   * monitor, each instance's outlier state and the retry policy hold references to it and
   * its parts and read them on every decision, so instances keep their health, ejections,
   * outstanding counts and queues, and calls in flight go on. The retry budget's window size
   * is fixed when a budget is made: a new window starts a new budget (counts from zero).
   */
  reconfigure(next: ResolvedOptions): void {
    const o = this.options;
    const newWindow = o.retry.budget.windowMs !== next.retry.budget.windowMs;
    o.heartbeatTimeoutMs = next.heartbeatTimeoutMs;
    Object.assign(o.outlier, next.outlier);
    o.maxConcurrentCallsPerInstance = next.maxConcurrentCallsPerInstance;
    o.maxPendingPerInstance = next.maxPendingPerInstance;
    Object.assign(o.waitForReady, next.waitForReady);
    Object.assign(o.retry.budget, next.retry.budget);
    Object.assign(o.retry, { ...next.retry, budget: o.retry.budget });
    if (newWindow) this.retryPolicy = new RetryPolicy(o.retry, this.clock, o.random);
  }

  /** What the balancer picks from (a new array on every join or leave). */
  get candidates(): readonly Candidate[] {
    return this.list;
  }

  get size(): number {
    return this.memberSet.size;
  }

  get(id: string): PooledInstance | undefined {
    return this.byId.get(id);
  }

  /** Registers an instance (once per instance id, not per Register stream). Calls waiting
   *  for an instance are admitted at once. */
  add(init: InstanceInit): PooledInstance {
    if (this.byId.has(init.id)) throw new Error(`instance '${init.id}' of ${this.service} is already registered`);
    const inst = new PooledInstance(this, init, this.monitor.add(init.id));
    this.byId.set(inst.id, inst);
    this.memberSet.add(inst);
    this.memberArray = undefined;
    this.listCache = undefined;
    this.wakeReady();
    return inst;
  }

  /** Removes an instance (its last stream is gone). Calls in flight on it still `finish`;
   *  calls queued for it are admitted elsewhere or wait. */
  remove(id: string): void {
    const inst = this.byId.get(id);
    if (!inst) return;
    inst.removed = true;
    inst.candidate.healthy = false;
    this.monitor.remove(inst.health);
    this.byId.delete(id);
    this.memberSet.delete(inst);
    this.memberArray = undefined;
    this.listCache = undefined;
    this.readmit(inst);
    this.queuedOn.delete(inst);
  }

  /** @internal A new candidates array tells balancers to rebuild their groups. */
  membershipChanged(): void {
    this.listCache = undefined;
    this.wakeReady();
  }

  statuses(): InstanceStatus[] {
    return this.members.map((m) => m.status());
  }

  /** Starts a call. Counts toward the retry budget's requests. */
  call(init: CallInit): PoolCall {
    return new PoolCall(this, init, this.retry.start(init.idempotent === true));
  }

  /** The retry budget's window (requests and retries counted), for tests and the debug panel. */
  get budget(): RetryBudget {
    return this.retry.budget;
  }

  /** Stops timers and fails every waiting call with UNAVAILABLE. */
  close(reason = "the router is shutting down"): void {
    this.closed = true;
    this.monitor.close();
    const waiters = [...this.ready, ...this.members.flatMap((m) => m.queue)];
    this.ready = [];
    for (const m of this.members) m.queue = [];
    for (const w of waiters) this.settle(w, new CallRejectedError(StatusCode.UNAVAILABLE, reason));
  }

  // ---- admission ----

  /** @internal */
  admit(call: PoolCall): CallAttempt | Promise<CallAttempt> {
    if (this.closed) throw new CallRejectedError(StatusCode.UNAVAILABLE, "the router is shutting down");
    const now = this.clock.now();
    const over = call.overReason(now);
    if (over) throw over;
    const a = this.tryPick(call, now, now);
    if (a) return a;
    const target = this.affinity(call);
    if (target) {
      if (target.queue.length >= this.options.maxPendingPerInstance) {
        throw new CallRejectedError(
          StatusCode.RESOURCE_EXHAUSTED,
          `instance '${target.id}' of ${this.service} is at its limit of ${target.maxConcurrentCalls} calls in flight and ${target.queue.length} queued`,
        );
      }
      return this.wait(call, target);
    }
    const wfr = this.options.waitForReady;
    if (!wfr.enabled || wfr.maxWaitMs === 0) throw new CallRejectedError(StatusCode.UNAVAILABLE, this.unavailableMessage(call));
    if (this.ready.length >= wfr.maxWaiting) {
      throw new CallRejectedError(StatusCode.RESOURCE_EXHAUSTED, `${this.ready.length} calls are already waiting for an instance of ${this.service}`);
    }
    return this.wait(call, "ready");
  }

  /** A pick among available instances (preferring ones this call has not tried). */
  private tryPick(call: PoolCall, now: number, since: number): CallAttempt | undefined {
    const tried = call.tried;
    let p: Pick | undefined;
    if (tried === undefined) p = this.balancer.pick(this.list, call.ctx);
    else p = this.pickWith(call, (m) => m.available && !tried.has(m.id)) ?? this.balancer.pick(this.list, call.ctx);
    if (p === undefined) return undefined;
    const inst = this.byId.get(p.candidate.id);
    if (inst === undefined || inst.candidate !== p.candidate || !inst.available) return undefined;
    return this.start(call, inst, p, now - since);
  }

  /** Where the balancer would send the call if full instances had room: its queue target. */
  private affinity(call: PoolCall): PooledInstance | undefined {
    const tried = call.tried;
    const p = (tried && this.pickWith(call, (m) => m.ok && !tried.has(m.id))) ?? this.pickWith(call, (m) => m.ok);
    const inst = p && this.byId.get(p.candidate.id);
    return inst && inst.ok && inst.candidate === p.candidate ? inst : undefined;
  }

  /** Runs the balancer with `healthy` temporarily set by `usable` (synchronous, so no one
   *  else sees the flags); the pool's flags are restored before returning. */
  private pickWith(call: PoolCall, usable: (m: PooledInstance) => boolean): Pick | undefined {
    const ms = this.members;
    const saved = ms.map((m) => m.candidate.healthy);
    try {
      for (const m of ms) m.candidate.healthy = usable(m);
      return this.balancer.pick(this.list, call.ctx);
    } finally {
      ms.forEach((m, i) => (m.candidate.healthy = saved[i]!));
    }
  }

  private start(call: PoolCall, inst: PooledInstance, pick: Pick, waitedMs: number): CallAttempt {
    call.attempts++;
    inst.candidate.outstanding++;
    if (!inst.hasRoom) inst.candidate.healthy = false;
    return new CallAttempt(call, inst, pick, call.attempts, waitedMs);
  }

  /**
   * Parks a call until a slot or an instance frees up. Every wait, queued or not, ends at
   * the call's deadline (DEADLINE_EXCEEDED) or after waitForReady.maxWaitMs (UNAVAILABLE
   * when no instance could take it, RESOURCE_EXHAUSTED when it sat in a full instance's queue).
   */
  private wait(call: PoolCall, where: PooledInstance | "ready"): Promise<CallAttempt> {
    return new Promise<CallAttempt>((resolve, reject) => {
      const now = this.clock.now();
      const w: Waiter = { call, resolve, reject, where, since: now, timer: undefined, onAbort: undefined };
      const until = Math.min(call.deadline, now + this.options.waitForReady.maxWaitMs);
      if (until !== Infinity) {
        w.timer = this.clock.setTimeout(() => {
          w.timer = undefined;
          this.detach(w);
          this.settle(w, this.timedOut(w));
        }, until - now);
      }
      const signal = call.init.signal;
      if (signal) {
        w.onAbort = () => {
          this.detach(w);
          this.settle(w, new CallRejectedError(StatusCode.CANCELLED, "the call was cancelled while waiting for an instance"));
        };
        signal.addEventListener("abort", w.onAbort, { once: true });
      }
      this.enqueue(w, where);
    });
  }

  private enqueue(w: Waiter, where: PooledInstance | "ready"): void {
    w.where = where;
    if (where === "ready") this.ready.push(w);
    else {
      where.queue.push(w);
      this.queuedOn.add(where);
      where.candidate.healthy = false;
    }
  }

  private timedOut(w: Waiter): CallRejectedError {
    const waited = this.clock.now() - w.since;
    if (this.clock.now() >= w.call.deadline) {
      const where = w.where === "ready" ? "waiting for an instance" : `queued for instance '${w.where.id}'`;
      return new CallRejectedError(StatusCode.DEADLINE_EXCEEDED, `deadline exceeded after ${waited} ms ${where}`);
    }
    if (w.where === "ready") return new CallRejectedError(StatusCode.UNAVAILABLE, `${this.unavailableMessage(w.call)}; waited ${waited} ms`);
    return new CallRejectedError(
      StatusCode.RESOURCE_EXHAUSTED,
      `waited ${waited} ms in the queue of instance '${w.where.id}' of ${this.service}, which stayed at its limit of ${w.where.maxConcurrentCalls} calls`,
    );
  }

  private detach(w: Waiter): void {
    if (w.where === "ready") this.ready = this.ready.filter((x) => x !== w);
    else {
      const inst = w.where;
      inst.queue = inst.queue.filter((x) => x !== w);
      this.refresh(inst);
    }
  }

  private settle(w: Waiter, outcome: CallAttempt | CallRejectedError): void {
    if (w.timer) this.clock.clearTimeout(w.timer);
    w.timer = undefined;
    if (w.onAbort) w.call.init.signal?.removeEventListener("abort", w.onAbort);
    w.onAbort = undefined;
    if (outcome instanceof CallRejectedError) w.reject(outcome);
    else w.resolve(outcome);
  }

  /**
   * After a join or a recovery: calls waiting for any instance try again, and so do calls
   * queued on full instances, since the newcomer may have room (or, under consistent
   * hashing, now own their key). A call that still has nowhere better goes back to its
   * queue in its old order. Joins and recoveries are rare; this is O(waiting calls).
   */
  private wakeReady(): void {
    if (this.closed) return;
    if (this.ready.length > 0) {
      const waiting = this.ready;
      this.ready = [];
      for (const w of waiting) this.place(w);
    }
    for (const m of [...this.queuedOn]) {
      if (m.queue.length === 0 || m.removed) this.queuedOn.delete(m);
      else this.readmit(m);
    }
  }

  /** Places the calls queued on an instance anew (it left, went unhealthy, or others joined). */
  private readmit(inst: PooledInstance): void {
    if (inst.queue.length === 0) return;
    const waiting = inst.queue;
    inst.queue = [];
    inst.candidate.healthy = false; // still full, or unhealthy: the balancer must not pick it
    for (const w of waiting) this.place(w);
    this.refresh(inst);
  }

  /** Finds a waiter an instance now, a queue, or a place in the ready list. */
  private place(w: Waiter): void {
    const now = this.clock.now();
    const a = this.tryPick(w.call, now, w.since);
    if (a) return this.settle(w, a);
    const target = this.affinity(w.call);
    if (target) {
      if (target.queue.length >= this.options.maxPendingPerInstance) {
        return this.settle(
          w,
          new CallRejectedError(StatusCode.RESOURCE_EXHAUSTED, `instance '${target.id}' of ${this.service} is at its limit and its queue is full`),
        );
      }
      return this.enqueue(w, target);
    }
    if (!this.options.waitForReady.enabled) return this.settle(w, new CallRejectedError(StatusCode.UNAVAILABLE, this.unavailableMessage(w.call)));
    this.enqueue(w, "ready");
  }

  // ---- completion ----

  /** @internal */
  finish(attempt: CallAttempt, call: PoolCall, result: AttemptResult): RetryDecision {
    const inst = attempt.instance;
    inst.candidate.outstanding--;
    let ejected: string | undefined;
    if (!inst.removed) {
      // Outlier detection sees only calls the instance got and the client did not cancel
      // (a deadline that passed does count: a black-holed instance shows up that way).
      if (result.delivered && !call.init.signal?.aborted) {
        const out = inst.health.outlier;
        const before = out.ejected;
        inst.health.recordResult(result.code);
        // This failure ejected the instance: the call's timeline says so.
        if (!before && out.ejected) ejected = inst.health.reason;
      }
      this.refresh(inst);
    }
    const finished = call.overReason(this.clock.now()) !== undefined || this.closed;
    // `{ ...result, finished }` would cost microseconds per call (V8 11 adds a property to a
    // spread copy on a slow path); `finished` false is what `after` assumes without it.
    const decision = call.retries.after(finished ? { ...result, finished } : result);
    if (decision.retry) {
      (call.tried ??= new Set()).add(inst.id);
      call.delayMs = decision.delayMs;
    }
    return ejected === undefined ? decision : { ...decision, ejected };
  }

  /** @internal Re-evaluates an instance after any change: flags, queue, waiters, events. */
  update(inst: PooledInstance, healthChanged = false): void {
    if (inst.removed) return;
    // The flag first: moving this instance's queue runs the balancer, which must not pick it.
    inst.candidate.healthy = inst.available;
    if (!inst.ok) this.readmit(inst);
    this.refresh(inst);
    if (healthChanged) {
      this.onHealthChange?.(inst.status());
      if (inst.ok) this.wakeReady();
    }
  }

  /** Hands free slots to queued calls, then sets the candidate's flag. */
  private refresh(inst: PooledInstance): void {
    while (inst.queue.length > 0 && inst.ok && inst.hasRoom) {
      const w = inst.queue.shift()!;
      const now = this.clock.now();
      this.settle(w, this.start(w.call, inst, new QueuedPick(inst.candidate, now - w.since), now - w.since));
    }
    inst.candidate.healthy = inst.available;
  }

  // ---- messages ----

  private unavailableMessage(call: PoolCall): string {
    const n = this.members.length;
    if (n === 0) return `no instance of ${this.service} is registered`;
    const by = new Map<string, number>();
    for (const m of this.members) by.set(m.health.state, (by.get(m.health.state) ?? 0) + 1);
    const serving = by.get("serving") ?? 0;
    const parts = [...by].map(([h, c]) => `${c} ${h.replace("_", " ")}`).join(", ");
    if (serving > 0) return `no instance of ${this.service} matches ${call.init.method} under ${this.balancer.describe()} (${parts})`;
    return `no instance of ${this.service} is available (${parts})`;
  }

  /** @internal Waits `ms` of backoff, ending early if the call is cancelled or its deadline comes first. */
  sleep(call: PoolCall, ms: number): Promise<void> {
    const now = this.clock.now();
    if (now + ms >= call.deadline) ms = Math.max(0, call.deadline - now);
    return new Promise<void>((resolve) => {
      const signal = call.init.signal;
      const onAbort = () => {
        this.clock.clearTimeout(timer);
        resolve();
      };
      const timer = this.clock.setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }
}

/** The reason for an attempt that got its slot from an instance's queue. */
class QueuedPick implements Pick {
  constructor(
    readonly candidate: Candidate,
    private readonly waitedMs: number,
  ) {}
  get reason(): string {
    return `queued ${this.waitedMs} ms for a free slot on ${this.candidate.id}`;
  }
}
