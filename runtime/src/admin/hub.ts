// The admin event hub: the router publishes what happens (instances, calls, messages) and the
// hub keeps the current state for snapshots and fans events out to watchers. This class is the
// facade over its parts: hub-events.ts (what is published), hub-history.ts (what is kept),
// event-builder.ts (the admin protobuf messages), event-bus.ts (listeners and watchers).
// The router's traffic must never wait for a watcher, so every watcher has a bounded queue, and
// publishing with nobody watching only updates a few maps (no event is built).
import { clone, create, type Registry } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  InstanceSchema,
  ServiceInfoSchema,
  SnapshotSchema,
  StatsPointSchema,
  StatsSeriesSchema,
  StatsTickSchema,
  type Action,
  type Event,
  type ServiceInfo,
  type Snapshot,
} from "../gen/grpcrouter/v1/admin_pb.js";
import { AdminActions } from "./actions.js";
import { BodyDecoder, type DescribeMethod } from "./body.js";
import { CallStats } from "./call-stats.js";
import { EventBuilder } from "./event-builder.js";
import { EventBus, eventOf } from "./event-bus.js";
import {
  callKey,
  type CallDecisionEvent,
  type CallEndedEvent,
  type CallHeadersEvent,
  type CallMessageEvent,
  type CallStartedEvent,
  type HubEvent,
  type HubListener,
  type InstanceUpdate,
} from "./hub-events.js";
import { HubHistory, type RecordedCall } from "./hub-history.js";
import { MetadataRedactor } from "./metadata.js";
import type { PendingEvent, Watcher, WatchOptions } from "./watcher.js";

export type { CallId, CallKind, HealthInput, HubEvent, HubListener, InstanceInfo, TransportInput } from "./hub-events.js";

export interface AdminHubOptions {
  routerId?: string;
  /** host:port clients dial; settable later with `setRouterAddress` (e.g. after binding port 0). */
  routerAddress?: string;
  /**
   * Metadata keys (exact, case-insensitive) and key patterns whose values are replaced by
   * "[redacted]". Default DEFAULT_REDACTED: well-known credential headers and any key that
   * looks like one (DEFAULT_REDACTED_PATTERN). A list given here replaces it; spread
   * DEFAULT_REDACTED into it to add to the default, pass [] to show everything.
   */
  redact?: readonly (string | RegExp)[];
  /** Schema resolver for decoding bodies to JSON; without it bodies are never decoded. */
  describe?: DescribeMethod;
  /** Registry for google.protobuf.Any inside bodies. */
  registry?: Registry;
  /** Decoded JSON longer than this is cut (json_truncated). Default 65536 chars. */
  maxBodyJsonChars?: number;
  /** Per-watcher queue bound. Default 4096 events. */
  watcherQueueLimit?: number;
  history?: {
    /** Recently ended calls kept for snapshots. Default 200; 0 keeps none. */
    calls?: number;
    /** Messages kept per call (the rest are counted). Default 100; 0 keeps none. */
    messagesPerCall?: number;
    /** Keep message bytes so a later watcher can still see bodies. Default true (needs `describe`). */
    bodies?: boolean;
    /** Total bytes of kept bodies across all kept calls. Default 16 MiB. */
    bodyBytes?: number;
  };
}

export class AdminHub {
  private readonly redactor: MetadataRedactor;
  private readonly decoder: BodyDecoder;
  private readonly build: EventBuilder;
  private readonly history: HubHistory;
  private readonly bus: EventBus;
  private readonly routerId: string;
  private routerAddress: string;
  private services: ServiceInfo[] = [];
  /** Operators' actions (drain, eject, weight, pause) and replays, for the Admin service and the dashboard. */
  readonly actions = new AdminActions((action) => this.publishAction(action));
  /** Per-second rates and latencies for the charts; ticked once a second while calls come. */
  private readonly stats = new CallStats();
  private statsTimer: NodeJS.Timeout | undefined;

  constructor(options: AdminHubOptions = {}) {
    this.redactor = new MetadataRedactor(options.redact);
    this.decoder = new BodyDecoder(options.describe, options.maxBodyJsonChars ?? 65536, options.registry);
    this.build = new EventBuilder(this.redactor, this.decoder);
    this.history = new HubHistory(
      {
        calls: options.history?.calls ?? 200,
        messagesPerCall: options.history?.messagesPerCall ?? 100,
        bodies: (options.history?.bodies ?? true) && this.decoder.canDecode,
        bodyBytes: options.history?.bodyBytes ?? 16 * 1024 * 1024,
      },
      this.build,
    );
    this.bus = new EventBus(options.watcherQueueLimit ?? 4096);
    this.routerId = options.routerId ?? "";
    this.routerAddress = options.routerAddress ?? "";
  }

  /** Whether message events are wanted (a watcher asked, or history keeps them). */
  get wantsMessages(): boolean {
    return this.bus.wantsMessages || this.bus.hasListeners || this.history.keepsMessages;
  }

  /** Whether `callMessage` should carry `payload` (bodies can be decoded and someone wants them). */
  get wantsBodies(): boolean {
    return this.decoder.canDecode && (this.bus.wantsBodies || this.history.keepsBodies);
  }

  /** The names of the services the router(s) serve (see `setServices`). */
  get serviceNames(): string[] {
    return this.services.map((s) => s.name);
  }

  get watcherCount(): number {
    return this.bus.watcherCount;
  }

  /** The protos were reloaded: resolve message schemas through `describe` anew. */
  resetSchemas(): void {
    this.decoder.clear();
  }

  setRouterAddress(address: string): void {
    this.routerAddress = address;
  }

  /** The services the router serves and their methods (for the snapshot's service list). */
  setServices(services: ReadonlyArray<{ name: string; methods: readonly string[] }>): void {
    this.services = services.map((s) => create(ServiceInfoSchema, { name: s.name, methods: [...s.methods] }));
  }

  /**
   * Calls `listener` with every event published from now on, before the hub records it and
   * fans it out. Unlike watchers, listeners are never sampled or dropped: metrics count every
   * call. With a listener the router also publishes message events (sizes, no bodies).
   * A listener that throws is reported once as a process warning; publishing goes on.
   * Returns the function that removes the listener.
   */
  onEvent(listener: HubListener): () => void {
    return this.bus.onEvent(listener);
  }

  /** Records what happened and fans it out to watchers. Never blocks, never throws on bad ids. */
  publish(event: HubEvent): void {
    this.bus.notifyListeners(event);
    switch (event.type) {
      case "instanceRegistered":
      case "instanceChanged":
        return this.upsertInstance(event.type, event.instance);
      case "instanceDeregistered":
        return this.removeInstance(event.instance.service, event.instance.id);
      case "callStarted":
        return this.startCall(event);
      case "callHeaders":
        return this.callHeaders(event);
      case "callMessage":
        return this.callMessage(event);
      case "callEnded":
        return this.endCall(event);
      case "callDecision":
        return this.callDecision(event);
    }
  }

  /** Everything known now, filtered like a watcher with these options would see it. */
  snapshot(options: WatchOptions = {}): Snapshot {
    const services = options.services && options.services.length > 0 ? new Set(options.services) : undefined;
    const withBodies = options.includeBodies ?? false;
    const withMessages = withBodies || (options.includeMessages ?? false);
    const keep = (service: string) => !services || services.has(service);
    const parts = this.history.snapshotParts(keep, withMessages, withBodies);
    return create(SnapshotSchema, {
      routerId: this.routerId,
      routerAddress: this.routerAddress,
      services: this.services.filter((s) => keep(s.name)).map((s) => (this.actions.isPaused(s.name) ? { ...s, paused: true } : s)),
      instances: parts.instances,
      callsInFlight: parts.callsInFlight,
      calls: parts.calls,
      stats: this.stats
        .history(Date.now())
        .filter((h) => keep(h.service))
        .map((h) => create(StatsSeriesSchema, { ...h, firstSecond: BigInt(h.firstSecond) })),
      actions: parts.actions,
    });
  }

  /**
   * Starts watching: the first event is a snapshot, then every event as it happens, with no
   * gap or overlap between the two (both happen in this synchronous call).
   */
  watch(options: WatchOptions = {}): Watcher {
    return this.bus.watch(options, eventOf({ case: "snapshot", value: this.snapshot(options) }));
  }

  /** Closes every watcher (their readers see the end of the stream). */
  close(): void {
    this.bus.close();
    if (this.statsTimer) clearInterval(this.statsTimer);
    this.statsTimer = undefined;
  }

  /**
   * Closes the previous second of every series and streams its points, one `stats` event
   * per service. Runs once a second from the first ended call on (the timer does not keep
   * the process alive); exposed for tests that drive time themselves.
   */
  tickStats(nowMs = Date.now()): void {
    const { second, points } = this.stats.tick(nowMs);
    if (!this.bus.watching || points.length === 0) return;
    const byService = new Map<string, typeof points>();
    for (const p of points) {
      let list = byService.get(p.service);
      if (!list) byService.set(p.service, (list = []));
      list.push(p);
    }
    for (const [service, list] of byService) {
      const tick = create(StatsTickSchema, { second: BigInt(second), points: list.map((p) => create(StatsPointSchema, p)) });
      this.bus.fanOut(service, { case: "stats", value: tick }, second * 1000 + 999);
    }
  }

  /**
   * What a replay needs of a recorded call (in flight or among the recent ones): its method,
   * kind, metadata as received, and the request bodies kept (undefined when any is missing).
   */
  recordedCall(id: bigint): RecordedCall | undefined {
    return this.history.recordedCall(id, (key) => this.redactor.isRedacted(key));
  }

  /** The request and response schemas of a method, through the hub's `describe` (undefined without one). */
  schemasOf(method: string): ReturnType<DescribeMethod> {
    return this.decoder.schemasOf(method);
  }

  // ---- each event: record it, then (only when someone watches) build and fan it out ----

  private upsertInstance(type: "instanceRegistered" | "instanceChanged", info: InstanceUpdate): void {
    const { instance, isNew } = this.history.upsertInstance(info);
    if (!this.bus.watching) return;
    const kind = type === "instanceRegistered" || isNew ? "instanceRegistered" : "instanceChanged";
    this.bus.fanOut(info.service, { case: kind, value: clone(InstanceSchema, instance) });
  }

  private removeInstance(service: string, id: string): void {
    const instance = this.history.removeInstance(service, id);
    if (!this.bus.watching) return;
    this.bus.fanOut(service, { case: "instanceDeregistered", value: clone(InstanceSchema, instance) });
  }

  private startCall(e: CallStartedEvent): void {
    const startMs = e.time?.getTime() ?? Date.now();
    const key = callKey(e.callId);
    const early = this.history.takeEarly(key);
    const call = this.history.startCall(e, key, startMs);
    if (this.bus.watching) this.bus.fanOut(call.service, { case: "callStarted", value: this.history.startedOf(call) }, startMs);
    if (early) for (const m of early) this.callMessage(m);
  }

  private callHeaders(e: CallHeadersEvent): void {
    const call = this.history.call(callKey(e.callId));
    if (call) this.history.recordHeaders(call, e);
    if (!this.bus.watching) return;
    const headers = call ? this.history.headersOf(call)! : this.build.callHeaders(BigInt(e.callId), e.metadata);
    this.bus.fanOut(call?.service ?? "", { case: "callHeaders", value: headers });
  }

  private callMessage(e: CallMessageEvent): void {
    const key = callKey(e.callId);
    const call = this.history.call(key);
    if (!call) return this.history.holdEarly(key, e);
    const wanted = this.bus.wantsMessages;
    const record = this.history.recordMessage(call, e, wanted);
    if (!record || !wanted) return;
    const payload = record.payload ?? e.payload;
    let plain: Event | undefined;
    let withBody: Event | undefined;
    // Built by the first watcher that takes it, in the form it asked for, then shared.
    const pending: PendingEvent = {
      service: call.service,
      isMessage: true,
      build: (bodies) =>
        bodies
          ? (withBody ??= eventOf({ case: "callMessage", value: this.build.callMessage(record, payload, true) }, record.timeMs))
          : (plain ??= eventOf({ case: "callMessage", value: this.build.callMessage(record, payload, false) }, record.timeMs)),
    };
    this.bus.offer(pending);
  }

  private endCall(e: CallEndedEvent): void {
    const key = callKey(e.callId);
    this.history.takeEarly(key); // held for a call that never started: dropped
    const call = this.history.call(key);
    const endMs = e.time?.getTime() ?? Date.now();
    if (!call) {
      // A call the hub never saw start: watchers still hear of its end.
      if (this.bus.watching) this.bus.fanOut("", { case: "callEnded", value: this.build.callEnded(e, BigInt(e.callId), 0) }, endMs);
      return;
    }
    const durationMs = e.time ? endMs - call.startMs : performance.now() - call.startPerf;
    this.stats.record(call.service, call.instanceId, durationMs, e.code, endMs);
    if (!this.statsTimer) {
      this.statsTimer = setInterval(() => this.tickStats(), 1000);
      this.statsTimer.unref();
    }
    this.history.endCall(call, key, e, durationMs);
    if (this.bus.watching) this.bus.fanOut(call.service, { case: "callEnded", value: this.history.endedOf(call)! }, endMs);
  }

  private callDecision(e: CallDecisionEvent): void {
    const call = this.history.call(callKey(e.callId));
    if (!call) return;
    const timeMs = e.time?.getTime() ?? Date.now();
    const decision = this.build.callDecision(e, call.id, timeMs);
    // An attempt on another instance: the call's in-flight count and statistics follow it.
    const attemptOn = e.decision.kind === "attempt" ? e.decision.instanceId : undefined;
    this.history.recordDecision(call, decision, attemptOn);
    if (this.bus.watching) this.bus.fanOut(call.service, { case: "callDecision", value: decision }, timeMs);
  }

  private publishAction(action: Action): void {
    action.time = timestampFromMs(Date.now());
    this.history.recordAction(action);
    if (this.bus.watching) this.bus.fanOut(action.service, { case: "action", value: action });
  }
}
