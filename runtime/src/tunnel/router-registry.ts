// The registry of one routed service: its instances (each with a pool of Register streams),
// the balancer that picks among them, and the calls waiting for room.
import { fromBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import type { Balancer, Candidate, PickContext } from "../balancer/index.js";
import type { RoutedCall, CallRoute } from "./router-call.js";
import type { RouterContext } from "./router-context.js";
import type { InstanceStream } from "./router-stream.js";
import type { RoutingKeyHook } from "./router.js";
import type { TunnelTable } from "./spec.js";

const MAX_REDISPATCHES = 5;

/** What admin views and code lenses see of an instance. */
export interface InstanceView {
  id: string;
  service: string;
  labels: Record<string, string>;
  weight: number;
  streams: number;
  inFlight: number;
  maxConcurrentCalls: number;
  draining: boolean;
  serving: boolean;
  address: string;
  description: string;
  registeredAt: Date;
}

export class RouterInstance implements Candidate {
  weight: number;
  labels: Record<string, string>;
  outstanding = 0;
  healthy = true;
  readonly streams: InstanceStream[] = [];
  maxConcurrentCalls: number;
  serving = true;
  description: string;
  readonly registeredAt = new Date();

  constructor(
    readonly id: string,
    private readonly route: ServiceRoute,
    first: InstanceStream,
  ) {
    const h = first.hello!;
    this.weight = h.weight || 1;
    this.labels = { ...h.labels };
    this.maxConcurrentCalls = h.maxConcurrentCalls;
    this.description = h.description;
  }

  get draining(): boolean {
    return this.streams.every((s) => s.draining);
  }

  /** Recomputes `healthy`: serving, not draining, below its call limit, a stream with room. */
  refresh(): void {
    this.healthy =
      this.serving &&
      (this.maxConcurrentCalls === 0 || this.outstanding < this.maxConcurrentCalls) &&
      this.streams.some((s) => s.room > 0);
  }

  setServing(serving: boolean): void {
    if (this.serving === serving) return;
    this.serving = serving;
    this.refresh();
    this.route.publishInstance(this, "instanceChanged");
    if (this.healthy) this.route.kick();
  }

  /** The stream with the most room. */
  bestStream(): InstanceStream | undefined {
    let best: InstanceStream | undefined;
    for (const s of this.streams) if (s.room > 0 && (!best || s.room > best.room)) best = s;
    return best;
  }

  view(): InstanceView {
    return {
      id: this.id,
      service: this.route.serviceName,
      labels: { ...this.labels },
      weight: this.weight,
      streams: this.streams.length,
      inFlight: this.outstanding,
      maxConcurrentCalls: this.maxConcurrentCalls,
      draining: this.draining,
      serving: this.serving,
      address: this.streams[0]?.peer ?? "",
      description: this.description,
      registeredAt: this.registeredAt,
    };
  }
}

export class ServiceRoute implements CallRoute {
  readonly serviceName: string;
  readonly instances = new Map<string, RouterInstance>();
  /** Copy-on-write, as the balancer contract asks. */
  private candidates: RouterInstance[] = [];
  private readonly pending: RoutedCall[] = [];

  constructor(
    private readonly ctx: RouterContext,
    readonly table: TunnelTable,
    private readonly balancer: Balancer,
    private readonly routingKeys: Readonly<Record<string, RoutingKeyHook>>,
    private readonly pendingCount: { n: number },
  ) {
    this.serviceName = table.spec.service.typeName;
  }

  // ---- membership ----

  addStream(s: InstanceStream): void {
    const h = s.hello!;
    let inst = this.instances.get(h.instanceId);
    const isNew = !inst;
    if (!inst) {
      inst = new RouterInstance(h.instanceId, this, s);
      this.instances.set(inst.id, inst);
      this.candidates = [...this.candidates, inst];
    } else {
      // A newer Hello of the same instance wins (a restarted process keeps its id).
      inst.weight = h.weight || 1;
      inst.labels = { ...h.labels };
      inst.maxConcurrentCalls = h.maxConcurrentCalls;
    }
    s.instance = inst;
    inst.streams.push(s);
    inst.refresh();
    this.ctx.log(`registered ${s.label}${isNew ? "" : ` (stream ${inst.streams.length})`}`);
    this.publishInstance(inst, isNew ? "instanceRegistered" : "instanceChanged");
    this.kick();
  }

  removeStream(s: InstanceStream): void {
    const inst = s.instance;
    if (!inst) return;
    const i = inst.streams.indexOf(s);
    if (i >= 0) inst.streams.splice(i, 1);
    if (inst.streams.length === 0 && this.instances.get(inst.id) === inst) {
      this.instances.delete(inst.id);
      this.candidates = this.candidates.filter((c) => c !== inst);
      this.ctx.log(`deregistered instance ${JSON.stringify(inst.id)} of ${this.serviceName}`);
      this.ctx.hub?.publish({ type: "instanceDeregistered", instance: { id: inst.id, service: this.serviceName } });
    } else {
      inst.refresh();
      this.publishInstance(inst, "instanceChanged");
    }
  }

  streamChanged(s: InstanceStream): void {
    const inst = s.instance;
    if (!inst) return;
    inst.refresh();
    this.publishInstance(inst, "instanceChanged");
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
        streams: inst.streams.length,
        maxConcurrentCalls: inst.maxConcurrentCalls,
        health: inst.draining ? "draining" : inst.serving ? "serving" : "not_serving",
        description: inst.description,
      },
    });
  }

  views(): InstanceView[] {
    return [...this.instances.values()].map((i) => i.view());
  }

  // ---- calls ----

  /** Routes a new call: to an instance, into the waiting queue, or fails it. */
  dispatch(call: RoutedCall): void {
    if (call.isFinished) return;
    if (this.ctx.closing) return call.fail(grpc.status.UNAVAILABLE, "grpcrouter: the router is shutting down");
    const ctx: PickContext = {
      method: call.method.path,
      routingKey: call.routingKey,
      metadata: (key) => {
        const v = call.metadata.get(key)[0];
        return typeof v === "string" ? v : undefined;
      },
    };
    const pick = this.candidates.length > 0 ? this.balancer.pick(this.candidates, ctx) : undefined;
    const inst = pick?.candidate as RouterInstance | undefined;
    const stream = inst?.bestStream();
    if (inst && stream) {
      inst.outstanding++;
      inst.refresh();
      this.publishStart(call, inst.id, pick!.reason);
      stream.open(call);
      return;
    }
    this.publishStart(call, undefined, undefined);
    const live = [...this.instances.values()].filter((i) => i.serving && !i.draining);
    if (live.length === 0) {
      const why = this.instances.size === 0 ? "is registered" : "is serving (all are draining or not serving)";
      return call.fail(grpc.status.UNAVAILABLE, `grpcrouter: no instance of ${this.serviceName} ${why}`);
    }
    // Instances exist but none has room (call limits, stream windows): wait for one.
    if (this.pendingCount.n >= this.ctx.limits.maxPendingCalls) {
      return call.fail(grpc.status.RESOURCE_EXHAUSTED, `grpcrouter: every instance of ${this.serviceName} is at capacity and ${this.pendingCount.n} calls are waiting`);
    }
    this.pending.push(call);
    this.pendingCount.n++;
  }

  /** callStarted once per call (a re-dispatched call keeps its first record). */
  private publishStart(call: RoutedCall, instanceId: string | undefined, reason: string | undefined): void {
    const hub = this.ctx.hub;
    if (!hub || call.hubStarted) return;
    call.hubStarted = true;
    hub.publish({
      type: "callStarted",
      callId: call.hubId,
      method: call.method.path,
      kind: call.method.kind,
      peer: call.client.getPeer(),
      metadata: call.metadata,
      ...(instanceId !== undefined ? { instanceId } : {}),
      ...(reason !== undefined ? { reason } : {}),
    });
    call.publishInitialRequest();
  }

  redispatch(call: RoutedCall): void {
    // Bounded, so that instances refusing calls cannot bounce one around for ever.
    if (++call.redispatches > MAX_REDISPATCHES) {
      return call.fail(grpc.status.UNAVAILABLE, `grpcrouter: ${call.method.path} was refused or lost by ${MAX_REDISPATCHES} instances`);
    }
    this.dispatch(call);
  }

  release(call: RoutedCall): void {
    const inst = call.stream?.instance;
    if (inst) {
      inst.outstanding = Math.max(0, inst.outstanding - 1);
      inst.refresh();
    }
    if (this.pending.length > 0) setImmediate(() => this.kick());
  }

  forgetPending(call: RoutedCall): void {
    const i = this.pending.indexOf(call);
    if (i >= 0) {
      this.pending.splice(i, 1);
      this.pendingCount.n--;
    }
  }

  /** Hands waiting calls to instances that have room now. */
  kick(): void {
    while (this.pending.length > 0) {
      if (!this.candidates.some((c) => c.healthy)) {
        // Nobody has room; but if nobody is left at all, the waiting calls fail now.
        if (![...this.instances.values()].some((i) => i.serving && !i.draining)) {
          const waiting = this.pending.splice(0);
          this.pendingCount.n -= waiting.length;
          for (const c of waiting) this.dispatch(c);
        }
        return;
      }
      const call = this.pending.shift()!;
      this.pendingCount.n--;
      this.dispatch(call);
    }
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

  closeAll(): RoutedCall[] {
    const waiting = this.pending.splice(0);
    this.pendingCount.n -= waiting.length;
    return waiting;
  }
}
