// The registry of one routed service: its instances (each with a pool of Register streams)
// and the admission of calls to them. Admission is runtime/src/resilience's InstancePool
// (the balancer, health, outlier ejection, per-instance limits and queues, wait-for-ready,
// retries under a budget); this file is the tunnel's side of it: it tells the pool what the
// streams say (Hello, HealthReport, Drain, any frame as a heartbeat) and runs each attempt
// the pool admits on a stream of the chosen instance.
import { fromBinary } from "@bufbuild/protobuf";
import type { Balancer } from "../../balancer/index.js";
import type { Hello } from "../../gen/grpcrouter/v1/tunnel_pb.js";
import {
  InstancePool,
  isIdempotent,
  type CallAttempt,
  type PoolCall,
  type HealthState,
  type InstanceStatus,
  type PooledInstance,
  type ResilienceOptions,
  type ResolvedOptions,
} from "../../resilience/index.js";
import type { RateLimiter } from "../rate-limit.js";
import { SwitchableBalancer } from "./reconfigure.js";
import type { RoutedCall, CallRoute } from "./router-call.js";
import type { RouterContext } from "./router-context.js";
import type { InstanceStream } from "./router-stream.js";
import type { RoutingKeyHook } from "./router.js";
import type { TunnelMethod, TunnelTable } from "../spec.js";

/** What admin views and code lenses see of an instance. */
export interface InstanceView {
  id: string;
  service: string;
  labels: Record<string, string>;
  weight: number;
  streams: number;
  inFlight: number;
  /** Calls queued for this instance while it is at its limit. */
  queued: number;
  maxConcurrentCalls: number;
  draining: boolean;
  /** Takes calls: SERVING, heard from, not ejected, not draining. */
  serving: boolean;
  /** serving, not_serving (its own report or silence), draining, ejected (outlier detection). */
  health: HealthState;
  /** Why it is out of rotation, in words ("" when it is in). */
  healthReason: string;
  address: string;
  description: string;
  registeredAt: Date;
}

export class RouterInstance {
  weight: number;
  /** Shared with the pool's candidate (never mutated: a new Hello brings a new object). */
  labels: Readonly<Record<string, string>>;
  /** Made with its first stream: `[]` and a push would reserve room for 17 (≈ 150 bytes per instance). */
  readonly streams: InstanceStream[];
  /** Hello's max_concurrent_calls; 0 = none. */
  maxConcurrentCalls: number;
  description: string;
  /** Epoch ms (a number, not a Date: 10,000 instances each keep one). */
  readonly registeredAtMs = Date.now();
  /** An operator's weight (Admin Act): wins over the weight of later Hellos. */
  operatorWeight: number | undefined;

  constructor(
    readonly id: string,
    private readonly route: ServiceRoute,
    first: InstanceStream,
    h: Hello,
    /** The pool's handle; replaced when a drained instance comes back under the same id. */
    public pooled: PooledInstance,
  ) {
    this.streams = [first];
    this.weight = h.weight || 1;
    this.labels = pooled.candidate.labels;
    this.maxConcurrentCalls = h.maxConcurrentCalls;
    this.description = h.description;
  }

  get draining(): boolean {
    return this.streams.every((s) => s.draining);
  }

  get outstanding(): number {
    return this.pooled.candidate.outstanding;
  }

  /** The stream with the most room. */
  bestStream(): InstanceStream | undefined {
    let best: InstanceStream | undefined;
    for (const s of this.streams) if (s.room > 0 && (!best || s.room > best.room)) best = s;
    return best;
  }

  view(): InstanceView {
    const st = this.pooled.status();
    return {
      id: this.id,
      service: this.route.serviceName,
      labels: { ...this.labels },
      weight: this.weight,
      streams: this.streams.length,
      inFlight: this.outstanding,
      queued: st.pending,
      maxConcurrentCalls: this.maxConcurrentCalls,
      draining: this.draining,
      serving: st.health === "serving",
      health: st.health,
      healthReason: st.reason,
      address: this.streams[0]?.peer ?? "",
      description: this.description,
      registeredAt: new Date(this.registeredAtMs),
    };
  }
}

export class ServiceRoute implements CallRoute {
  readonly serviceName: string;
  readonly instances = new Map<string, RouterInstance>();
  readonly pool: InstancePool;
  private idempotent = new Map<TunnelMethod, boolean>();
  private tunnel: TunnelTable;
  /** Closed: the router no longer routes the service (or shuts down); it reports nothing more. */
  private closed = false;
  /** The pool keeps this object for its life; `configure` swaps what it delegates to. */
  private readonly switchable: SwitchableBalancer;
  /** Set while an operator has paused the service: the status message of refused calls. */
  paused: string | undefined;
  /** Instances taking calls now (SERVING, not draining): grpc.health.v1 asks in O(1). */
  private readonly serving = new Set<RouterInstance>();

  constructor(
    private readonly ctx: RouterContext,
    table: TunnelTable,
    balancer: Balancer,
    private routingKeys: Readonly<Record<string, RoutingKeyHook>>,
    resilience: ResilienceOptions,
    /** Calls waiting for an instance (queued, waiting for ready, backing off), over all services. */
    private readonly pendingCount: { n: number },
    private limiter: RateLimiter | undefined,
    /** Told when the service gains its first serving instance or loses its last. */
    private readonly onServingChange?: (service: string, serving: boolean) => void,
  ) {
    this.serviceName = table.spec.service.typeName;
    this.tunnel = table;
    this.switchable = new SwitchableBalancer(balancer);
    this.pool = new InstancePool({
      service: this.serviceName,
      balancer: this.switchable,
      resilience,
      clock: ctx.clock,
      onHealthChange: (s) => this.onHealthChange(s),
    });
    for (const m of table.byPath.values()) this.idempotent.set(m, isIdempotent(m.method));
  }

  get balancer(): Balancer {
    return this.switchable.current;
  }

  /** The strategy in words, built once per balancer (every call's record carries it). */
  policy(): string {
    return (this.policyText ??= this.switchable.current.describe());
  }
  private policyText: string | undefined;
  /** The service's methods and Register path as new calls see them (replaceService swaps it). */
  get table(): TunnelTable {
    return this.tunnel;
  }

  /**
   * A new definition of the service (a reloaded proto) for new calls; the pool, its
   * instances and calls in flight (which hold their own method) stay. Returns whether the
   * registered instances can serve it: every method both definitions have keeps its frame
   * field and kind, and the Register path is the same. When they cannot, each of them is told
   * to drain, so its bridge registers anew (with the numbers it was generated with).
   */
  replaceService(table: TunnelTable, routingKeys: Readonly<Record<string, RoutingKeyHook>>): boolean {
    const before = this.tunnel;
    if (table.spec.service.typeName !== this.serviceName) throw new Error(`replaceService: ${table.spec.service.typeName} is not ${this.serviceName}`);
    let compatible = table.registerPath === before.registerPath;
    for (const [path, m] of table.byPath) {
      const old = before.byPath.get(path);
      if (old && (old.field !== m.field || old.kind !== m.kind)) compatible = false;
    }
    this.tunnel = table;
    this.routingKeys = routingKeys;
    const idempotent = new Map<TunnelMethod, boolean>();
    for (const m of table.byPath.values()) idempotent.set(m, isIdempotent(m.method));
    this.idempotent = idempotent;
    if (!compatible) {
      for (const inst of [...this.instances.values()]) {
        for (const s of [...inst.streams]) s.retire(`${this.serviceName} changed: its methods' frame fields differ; register anew`, 10_000);
      }
    }
    return compatible;
  }

  /**
   * New settings for new calls: the balancer, the pool's resilience options (changed in
   * place, so instances keep their health, ejections and calls in flight) and the rate
   * limits (fresh, full buckets). Everything was validated by the caller.
   */
  reconfigure(balancer: Balancer, resilience: ResolvedOptions, limiter: RateLimiter | undefined): void {
    this.switchable.current = balancer;
    this.policyText = undefined;
    this.limiter = limiter;
    this.pool.reconfigure(resilience);
    // Limits may have changed (maxConcurrentCallsPerInstance): re-evaluate every instance,
    // which also hands freed slots to queued calls.
    for (const inst of this.instances.values()) this.updateLimit(inst);
    // A new candidates array makes the new balancer build its groups, and calls waiting
    // for an instance try again (a subset that matched nothing may match now).
    this.pool.membershipChanged();
  }

  // ---- membership ----

  /** `s` was accepted; `h` is its Hello (the stream keeps only its id and session). */
  addStream(s: InstanceStream, h: Hello): void {
    let inst = this.instances.get(h.instanceId);
    const isNew = !inst;
    if (!inst) {
      const pooled = this.pool.add({ id: h.instanceId, labels: h.labels, weight: h.weight || 1, maxConcurrentCalls: this.ctx.limits.callsPerStream });
      inst = new RouterInstance(h.instanceId, this, s, h, pooled);
      this.instances.set(inst.id, inst);
    } else {
      // A newer Hello of the same instance wins (a restarted process keeps its id; a
      // re-registration is how an instance changes its weight or labels at runtime).
      inst.weight = inst.operatorWeight ?? (h.weight || 1);
      inst.maxConcurrentCalls = h.maxConcurrentCalls;
      inst.description = h.description;
      if (inst.draining && inst.pooled.health.state === "draining") {
        // Drain has no way back in the pool: an instance that returns under its id after
        // draining (a restart) starts afresh. Its calls in flight still finish on the old handle.
        this.pool.remove(inst.id);
        inst.pooled = this.pool.add({ id: inst.id, labels: h.labels, weight: inst.weight, maxConcurrentCalls: this.ctx.limits.callsPerStream });
        inst.labels = inst.pooled.candidate.labels;
      }
      inst.pooled.setWeight(inst.weight);
      if (!sameLabels(inst.labels, h.labels)) {
        inst.pooled.setLabels(h.labels);
        inst.labels = inst.pooled.candidate.labels;
      }
    }
    s.instance = inst;
    if (!isNew) inst.streams.push(s);
    this.ctx.log(`registered ${s.label}${isNew ? "" : ` (stream ${inst.streams.length})`}`);
    this.publishInstance(inst, isNew ? "instanceRegistered" : "instanceChanged");
    this.updateLimit(inst);
    this.refreshServing(inst);
  }

  /**
   * `fresh` (just accepted, its principal's claim on the id checked) names an earlier stream
   * of its instance that the instance lost: close that one now. Only a stream of the same
   * instance id is looked at, and every stream of an id has the same principal (the claim).
   */
  replaceStale(fresh: InstanceStream, session: string): void {
    const inst = this.instances.get(fresh.instanceId);
    const stale = inst?.streams.find((s) => s !== fresh && s.session === session && s.principal === fresh.principal);
    stale?.replaced();
  }

  removeStream(s: InstanceStream, reason?: string): void {
    const inst = s.instance;
    if (!inst) return;
    const i = inst.streams.indexOf(s);
    if (i >= 0) inst.streams.splice(i, 1);
    if (inst.streams.length === 0 && this.instances.get(inst.id) === inst) {
      this.instances.delete(inst.id);
      this.pool.remove(inst.id);
      this.refreshServing(inst);
      this.ctx.log(`deregistered instance ${JSON.stringify(inst.id)} of ${this.serviceName}${reason ? `: ${reason}` : ""}`);
      this.ctx.hub?.publish({ type: "instanceDeregistered", instance: { id: inst.id, service: this.serviceName } });
    } else {
      this.streamChanged(s);
    }
  }

  /** A stream of the instance drained (or left): its capacity changed, it may be draining as a whole. */
  streamChanged(s: InstanceStream): void {
    const inst = s.instance;
    if (!inst) return;
    if (inst.draining) inst.pooled.drain();
    this.updateLimit(inst);
    this.publishInstance(inst, "instanceChanged");
    this.refreshServing(inst);
  }

  /** The instance's own HealthReport. */
  report(inst: RouterInstance, serving: boolean): void {
    inst.pooled.report(serving ? "SERVING" : "NOT_SERVING");
  }

  /**
   * The pool's concurrency limit of an instance: Hello's max_concurrent_calls, and what its
   * open streams carry (callsPerStream each). While the instance has fewer calls than its
   * open streams can carry, one of them has room, so an admitted call always finds a stream.
   */
  private updateLimit(inst: RouterInstance): void {
    let open = 0;
    for (const x of inst.streams) if (!x.draining && !x.closed) open++;
    const carried = Math.max(1, open) * this.ctx.limits.callsPerStream;
    const hello = inst.maxConcurrentCalls;
    inst.pooled.setMaxConcurrentCalls(hello > 0 ? Math.min(hello, carried) : carried);
  }

  /** Keeps `serving` current after anything that may change whether `inst` takes calls. O(1). */
  private refreshServing(inst: RouterInstance): void {
    const before = this.serving.size > 0;
    if (this.instances.get(inst.id) === inst && inst.pooled.health.state === "serving" && !inst.draining) this.serving.add(inst);
    else this.serving.delete(inst);
    const after = this.serving.size > 0;
    if (after !== before && !this.closed) this.onServingChange?.(this.serviceName, after);
  }

  private onHealthChange(s: InstanceStatus): void {
    const inst = this.instances.get(s.id);
    if (!inst) return;
    this.refreshServing(inst);
    if (s.health === "ejected" || (s.health === "serving" && s.ejections > 0 && s.consecutiveFailures === 0)) {
      this.ctx.log(`instance ${JSON.stringify(s.id)} of ${this.serviceName}: ${s.health === "ejected" ? s.reason : "back in rotation"}`);
    }
    this.ctx.hub?.publish({ type: "instanceChanged", instance: { id: s.id, service: this.serviceName, health: s.health } });
  }

  publishInstance(inst: RouterInstance, type: "instanceRegistered" | "instanceChanged"): void {
    const hub = this.ctx.hub;
    if (!hub) return;
    hub.publish({
      type,
      instance: {
        id: inst.id,
        service: this.serviceName,
        labels: inst.labels,
        weight: inst.weight,
        address: inst.streams[0]?.peer ?? "",
        transport: inst.streams[0]?.transport,
        // Every stream of an id has the same principal (instance-identity.ts claims).
        principal: inst.streams[0]?.principal,
        streams: inst.streams.length,
        maxConcurrentCalls: inst.maxConcurrentCalls,
        health: inst.draining ? "draining" : inst.pooled.health.state,
        description: inst.description,
        operatorDrained: inst.pooled.health.drainedByOperator,
        operatorEjected: inst.pooled.health.ejectedByOperator,
        operatorWeight: inst.operatorWeight !== undefined,
      },
    });
  }

  hasServingInstance(): boolean {
    return this.serving.size > 0;
  }

  views(): InstanceView[] {
    return [...this.instances.values()].map((i) => i.view());
  }

  // ---- calls ----

  /** Rate limits, checked before the pool: a refusal's reason, or undefined. */
  admit(call: RoutedCall): string | undefined {
    return this.limiter?.admit({ method: call.method.method.name, routingKey: call.routingKey, metadata: call.metadataValue });
  }

  /** The pool's record of a new call: the call asks it for each attempt. */
  poolCall(call: RoutedCall): PoolCall {
    return this.pool.call({
      method: call.method.path,
      // A call that began before a replaceService asks about its own (old) method.
      idempotent: this.idempotent.get(call.method) ?? isIdempotent(call.method.method),
      routingKey: call.routingKey,
      metadata: call.metadataValue,
      deadline: call.deadline,
      signal: call.abort.signal,
    });
  }

  /** A stream with room of the instance an attempt was admitted to; undefined when it left meanwhile. */
  streamFor(attempt: CallAttempt): InstanceStream | undefined {
    const inst = this.instances.get(attempt.instance.id);
    return inst !== undefined && inst.pooled === attempt.instance ? inst.bestStream() : undefined;
  }

  waiting(delta: 1 | -1): void {
    this.pendingCount.n += delta;
  }

  /** The routing key of a call from the method's hook, decoding the request only then. */
  routingKeyOf(call: RoutedCall, request: Buffer | undefined): string | undefined {
    const hook = this.routingKeys[call.method.method.name];
    if (!hook) return undefined;
    try {
      const req = request !== undefined ? fromBinary(call.method.method.input, request) : undefined;
      return hook({ method: call.method.path, metadata: call.metadata, ...(req !== undefined ? { request: req } : {}) });
    } catch (e) {
      this.ctx.log(`routing key hook of ${call.method.path} failed: ${(e as Error).message}`);
      return undefined;
    }
  }

  /** Fails every waiting call and stops the pool's timers: the router shuts down, or stops routing the service. */
  close(reason = "the router is shutting down"): void {
    this.closed = true;
    this.pool.close(reason);
  }
}

function sameLabels(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => a[k] === b[k]);
}
