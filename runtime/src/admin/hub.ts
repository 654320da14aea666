// The admin event hub: the router publishes what happens (instances, calls, messages) and the
// hub keeps the current state for snapshots and fans events out to watchers. The router's
// traffic must never wait for a watcher, so every watcher has a bounded queue, and publishing
// with nobody watching only updates a few maps (no protobuf message is built).
import { clone, create, type Registry } from "@bufbuild/protobuf";
import { timestampFromMs, type Duration } from "@bufbuild/protobuf/wkt";
import {
  CallDecision_Kind,
  CallDecisionSchema,
  CallEndedSchema,
  CallHeadersSchema,
  CallMessage_Direction,
  CallMessageSchema,
  CallRecordSchema,
  CallStartedSchema,
  EventSchema,
  Instance_Health,
  InstanceSchema,
  ServiceInfoSchema,
  SnapshotSchema,
  StatsPointSchema,
  StatsSeriesSchema,
  StatsTickSchema,
  type Action,
  type CallDecision,
  type CallEnded,
  type CallHeaders,
  type CallMessage,
  type CallRecord,
  type CallStarted,
  type Event,
  type Instance,
  type ServiceInfo,
  type Snapshot,
} from "../gen/grpcrouter/v1/admin_pb.js";
import { AdminActions } from "./actions.js";
import { BodyDecoder, type DecodedBody, type DescribeMethod } from "./body.js";
import { CallStats } from "./call-stats.js";
import { MetadataRedactor, type MetadataInput } from "./metadata.js";
import { Watcher, type PendingEvent, type WatchOptions } from "./watcher.js";

export type CallId = bigint | number;
export type CallKind = "unary" | "server_streaming" | "client_streaming" | "bidi_streaming";
export type HealthInput = "serving" | "not_serving" | "draining" | "ejected" | Instance_Health;

export interface InstanceInfo {
  id: string;
  /** Fully-qualified service name, e.g. "demo.v1.Echo". */
  service: string;
  labels?: Record<string, string>;
  weight?: number;
  /** Peer address of the instance's Register stream(s). */
  address?: string;
  streams?: number;
  maxConcurrentCalls?: number;
  health?: HealthInput;
  registeredAt?: Date;
  description?: string;
  /** An operator drained or ejected it, or set its weight (Admin Act). */
  operatorDrained?: boolean;
  operatorEjected?: boolean;
  operatorWeight?: boolean;
}

/** What the router publishes. In-flight counts per instance are kept by the hub itself. */
export type HubEvent =
  | { type: "instanceRegistered"; instance: InstanceInfo }
  /** Health, streams, weight, labels… changed: only the given fields are updated. */
  | { type: "instanceChanged"; instance: Pick<InstanceInfo, "id" | "service"> & Partial<InstanceInfo> }
  | { type: "instanceDeregistered"; instance: Pick<InstanceInfo, "id" | "service"> }
  | {
      type: "callStarted";
      callId: CallId;
      /** The method path, "/pkg.Svc/Method". */
      method: string;
      kind?: CallKind;
      peer?: string;
      metadata?: MetadataInput;
      instanceId?: string;
      /** Why this instance: the balancer and the routing key, in words. */
      reason?: string;
      /** Waited for an instance or a slot before the first attempt. */
      queuedMs?: number;
      /** The balancing strategy, in words. */
      policy?: string;
      routingKey?: string;
      time?: Date;
    }
  | {
      /** A later attempt, a retry, the router's refusal, an ejection (see admin.proto CallDecision). */
      type: "callDecision";
      callId: CallId;
      decision: {
        kind: "attempt" | "retry" | "refused" | "ejected";
        attempt: number;
        instanceId?: string;
        reason: string;
        queuedMs?: number;
        code?: number;
        backoffMs?: number;
      };
      time?: Date;
    }
  | { type: "callHeaders"; callId: CallId; metadata?: MetadataInput }
  | {
      type: "callMessage";
      callId: CallId;
      direction: "request" | "response";
      /** Encoded size in bytes (defaults to payload.byteLength). */
      size?: number;
      /** The serialized message; pass it when `hub.wantsBodies`, omit it otherwise. */
      payload?: Uint8Array;
      time?: Date;
    }
  | {
      type: "callEnded";
      callId: CallId;
      /** gRPC status code. */
      code: number;
      message?: string;
      trailers?: MetadataInput;
      /** Message counts; default to what the hub saw published. */
      requests?: number;
      responses?: number;
      time?: Date;
    };

/**
 * Sees every event the hub is given, synchronously, before the watchers do (see `onEvent`).
 * It runs on the router's traffic path: keep it to a few map and counter updates.
 */
export type HubListener = (event: HubEvent) => void;

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

interface MessageRecord {
  readonly callId: bigint;
  readonly method: string;
  readonly direction: "request" | "response";
  readonly size: number;
  readonly timeMs: number;
  /** Kept only within the history byte budget. */
  payload: Uint8Array | undefined;
  decoded: DecodedBody | undefined;
  base: CallMessage | undefined;
}

interface CallState {
  readonly id: bigint;
  readonly method: string;
  readonly service: string;
  /** The instance of the current attempt (a retry elsewhere moves it). */
  instanceKey: string | undefined;
  instanceId: string;
  /** Kept for a replay: the request metadata as the router got it (not redacted). */
  readonly rawMetadata: MetadataInput | undefined;
  readonly decisions: CallDecision[];
  readonly startMs: number;
  readonly startPerf: number;
  readonly started: CallStarted;
  headers: CallHeaders | undefined;
  readonly messages: MessageRecord[];
  omitted: number;
  requests: number;
  responses: number;
  keptBytes: number;
  ended: CallEnded | undefined;
}

const HEALTH: Record<Exclude<HealthInput, Instance_Health>, Instance_Health> = {
  serving: Instance_Health.SERVING,
  not_serving: Instance_Health.NOT_SERVING,
  draining: Instance_Health.DRAINING,
  ejected: Instance_Health.EJECTED,
};

function serviceOf(method: string): string {
  const m = /^\/?([^/]+)\//.exec(method);
  return m ? m[1]! : "";
}

const DECISION_KINDS = {
  attempt: CallDecision_Kind.ATTEMPT,
  retry: CallDecision_Kind.RETRY,
  refused: CallDecision_Kind.REFUSED,
  ejected: CallDecision_Kind.EJECTED,
} as const;
const MAX_DECISIONS = 32;
const RECENT_ACTIONS = 50;

/** Bounds of the messages held for calls not started yet. */
const EARLY_CALLS = 1024;
const EARLY_MESSAGES = 16;

const instanceKey = (service: string, id: string) => `${service}\u0000${id}`;

function durationOfMs(ms: number): Duration {
  const whole = Math.max(0, ms);
  const seconds = Math.floor(whole / 1000);
  return { $typeName: "google.protobuf.Duration", seconds: BigInt(seconds), nanos: Math.round((whole - seconds * 1000) * 1e6) };
}

export class AdminHub {
  private readonly redactor: MetadataRedactor;
  private readonly decoder: BodyDecoder;
  private readonly queueLimit: number;
  private readonly historyCalls: number;
  private readonly historyMessages: number;
  private readonly historyBodies: boolean;
  private readonly historyBodyBytes: number;
  private readonly routerId: string;
  private routerAddress: string;
  private services: ServiceInfo[] = [];

  private readonly instances = new Map<string, Instance>();
  /** Operators' actions (drain, eject, weight, pause) and replays, for the Admin service and the dashboard. */
  readonly actions = new AdminActions((action) => this.publishAction(action));
  private readonly recentActions: Action[] = [];
  private readonly inFlightPerInstance = new Map<string, number>();
  private readonly calls = new Map<bigint, CallState>();
  /** Messages published before their call's callStarted, by call id (see callMessage). */
  private readonly early = new Map<bigint, Array<Extract<HubEvent, { type: "callMessage" }>>>();
  private readonly recent: CallState[] = [];
  private keptBodyBytes = 0;

  private readonly watchers = new Set<Watcher>();
  private readonly listeners = new Set<HubListener>();
  private messageWatchers = 0;
  private bodyWatchers = 0;
  /** Per-second rates and latencies for the charts; ticked once a second while calls come. */
  private readonly stats = new CallStats();
  private statsTimer: NodeJS.Timeout | undefined;

  constructor(options: AdminHubOptions = {}) {
    this.redactor = new MetadataRedactor(options.redact);
    this.decoder = new BodyDecoder(options.describe, options.maxBodyJsonChars ?? 65536, options.registry);
    this.queueLimit = options.watcherQueueLimit ?? 4096;
    this.historyCalls = options.history?.calls ?? 200;
    this.historyMessages = options.history?.messagesPerCall ?? 100;
    this.historyBodies = (options.history?.bodies ?? true) && this.decoder.canDecode;
    this.historyBodyBytes = options.history?.bodyBytes ?? 16 * 1024 * 1024;
    this.routerId = options.routerId ?? "";
    this.routerAddress = options.routerAddress ?? "";
  }

  /** Whether message events are wanted (a watcher asked, or history keeps them). */
  get wantsMessages(): boolean {
    return this.messageWatchers > 0 || this.listeners.size > 0 || (this.historyMessages > 0 && this.historyCalls > 0);
  }

  /** Whether `callMessage` should carry `payload` (bodies can be decoded and someone wants them). */
  get wantsBodies(): boolean {
    return this.decoder.canDecode && (this.bodyWatchers > 0 || (this.historyBodies && this.historyMessages > 0 && this.historyCalls > 0));
  }

  /** The names of the services the router(s) serve (see `setServices`). */
  get serviceNames(): string[] {
    return this.services.map((s) => s.name);
  }

  get watcherCount(): number {
    return this.watchers.size;
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
    // Wrapped so the same function can be added twice and each removal removes one.
    let warned = false;
    const entry: HubListener = (event) => {
      try {
        listener(event);
      } catch (e) {
        if (!warned) {
          warned = true;
          process.emitWarning(`grpcrouter: an AdminHub event listener threw: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
    };
    this.listeners.add(entry);
    return () => void this.listeners.delete(entry);
  }

  /** Records what happened and fans it out to watchers. Never blocks, never throws on bad ids. */
  publish(event: HubEvent): void {
    if (this.listeners.size > 0) for (const l of this.listeners) l(event);
    switch (event.type) {
      case "instanceRegistered":
      case "instanceChanged":
        return this.upsertInstance(event.type, event.instance);
      case "instanceDeregistered":
        return this.removeInstance(event.instance.service, event.instance.id);
      case "callStarted":
        return this.startCall(event);
      case "callHeaders":
        return this.callHeaders(BigInt(event.callId), event.metadata);
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
    const instances = [...this.instances.values()].filter((i) => keep(i.service)).map((i) => clone(InstanceSchema, i));
    const inFlight = [...this.calls.values()].filter((c) => keep(c.service));
    const records: CallRecord[] = [];
    for (const c of [...this.recent, ...inFlight]) {
      if (!keep(c.service)) continue;
      records.push(
        create(CallRecordSchema, {
          started: c.started,
          headers: c.headers,
          ended: c.ended,
          messages: withMessages ? c.messages.map((m) => this.messageOf(m, m.payload, withBodies)) : [],
          messagesOmitted: withMessages ? c.omitted : c.omitted + c.messages.length,
          decisions: c.decisions,
        }),
      );
    }
    return create(SnapshotSchema, {
      routerId: this.routerId,
      routerAddress: this.routerAddress,
      services: this.services.filter((s) => keep(s.name)).map((s) => (this.actions.isPaused(s.name) ? { ...s, paused: true } : s)),
      instances,
      callsInFlight: inFlight.map((c) => c.started),
      calls: records,
      stats: this.stats
        .history(Date.now())
        .filter((h) => keep(h.service))
        .map((h) => create(StatsSeriesSchema, { ...h, firstSecond: BigInt(h.firstSecond) })),
      actions: this.recentActions.filter((a) => keep(a.service)),
    });
  }

  /**
   * Starts watching: the first event is a snapshot, then every event as it happens, with no
   * gap or overlap between the two (both happen in this synchronous call).
   */
  watch(options: WatchOptions = {}): Watcher {
    const first = create(EventSchema, {
      time: timestampFromMs(Date.now()),
      event: { case: "snapshot", value: this.snapshot(options) },
    });
    const watcher: Watcher = new Watcher(options, this.queueLimit, first, () => {
      this.watchers.delete(watcher);
      if (watcher.includeMessages) this.messageWatchers--;
      if (watcher.includeBodies) this.bodyWatchers--;
    });
    this.watchers.add(watcher);
    if (watcher.includeMessages) this.messageWatchers++;
    if (watcher.includeBodies) this.bodyWatchers++;
    return watcher;
  }

  /** Closes every watcher (their readers see the end of the stream). */
  close(): void {
    for (const w of [...this.watchers]) w.close();
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
    if (this.watchers.size === 0 || points.length === 0) return;
    const byService = new Map<string, typeof points>();
    for (const p of points) {
      let list = byService.get(p.service);
      if (!list) byService.set(p.service, (list = []));
      list.push(p);
    }
    for (const [service, list] of byService) {
      const tick = create(StatsTickSchema, { second: BigInt(second), points: list.map((p) => create(StatsPointSchema, p)) });
      this.fanOut(service, false, { case: "stats", value: tick }, second * 1000 + 999);
    }
  }

  // ---- instances ----

  private upsertInstance(type: "instanceRegistered" | "instanceChanged", info: Partial<InstanceInfo> & { id: string; service: string }): void {
    const key = instanceKey(info.service, info.id);
    let inst = this.instances.get(key);
    const isNew = !inst;
    if (!inst) {
      inst = create(InstanceSchema, { id: info.id, service: info.service, registeredAt: timestampFromMs(Date.now()) });
      this.instances.set(key, inst);
    }
    if (info.labels !== undefined) inst.labels = { ...info.labels };
    if (info.weight !== undefined) inst.weight = info.weight;
    if (info.address !== undefined) inst.address = info.address;
    if (info.streams !== undefined) inst.streams = info.streams;
    if (info.maxConcurrentCalls !== undefined) inst.maxConcurrentCalls = info.maxConcurrentCalls;
    if (info.health !== undefined) inst.health = typeof info.health === "string" ? HEALTH[info.health] : info.health;
    else if (isNew) inst.health = Instance_Health.SERVING;
    if (info.registeredAt !== undefined) inst.registeredAt = timestampFromMs(info.registeredAt.getTime());
    if (info.description !== undefined) inst.description = info.description;
    if (info.operatorDrained !== undefined) inst.operatorDrained = info.operatorDrained;
    if (info.operatorEjected !== undefined) inst.operatorEjected = info.operatorEjected;
    if (info.operatorWeight !== undefined) inst.operatorWeight = info.operatorWeight;
    inst.inFlightCalls = this.inFlightPerInstance.get(key) ?? 0;
    if (this.watchers.size === 0) return;
    const snap = clone(InstanceSchema, inst);
    const kind = type === "instanceRegistered" || isNew ? "instanceRegistered" : "instanceChanged";
    this.fanOut(info.service, false, { case: kind, value: snap });
  }

  private removeInstance(service: string, id: string): void {
    const key = instanceKey(service, id);
    const inst = this.instances.get(key) ?? create(InstanceSchema, { id, service });
    this.instances.delete(key);
    if (this.watchers.size === 0) return;
    this.fanOut(service, false, { case: "instanceDeregistered", value: clone(InstanceSchema, inst) });
  }

  private bumpInFlight(key: string | undefined, delta: number): void {
    if (key === undefined) return;
    const n = Math.max(0, (this.inFlightPerInstance.get(key) ?? 0) + delta);
    if (n === 0) this.inFlightPerInstance.delete(key);
    else this.inFlightPerInstance.set(key, n);
    const inst = this.instances.get(key);
    if (inst) inst.inFlightCalls = n;
  }

  // ---- calls ----

  private startCall(e: Extract<HubEvent, { type: "callStarted" }>): void {
    const id = BigInt(e.callId);
    const service = serviceOf(e.method);
    const startMs = e.time?.getTime() ?? Date.now();
    const started = create(CallStartedSchema, {
      callId: id,
      method: e.method,
      peer: e.peer ?? "",
      metadata: this.redactor.toMap(e.metadata),
      instanceId: e.instanceId ?? "",
      reason: e.reason ?? "",
      time: timestampFromMs(startMs),
      kind: e.kind ?? "",
      queuedMs: Math.round(e.queuedMs ?? 0),
      policy: e.policy ?? "",
      routingKey: e.routingKey ?? "",
    });
    const instKey = e.instanceId ? instanceKey(service, e.instanceId) : undefined;
    this.calls.set(id, {
      id,
      method: e.method,
      service,
      instanceKey: instKey,
      instanceId: e.instanceId ?? "",
      rawMetadata: e.metadata,
      decisions: [],
      startMs,
      startPerf: performance.now(),
      started,
      headers: undefined,
      messages: [],
      omitted: 0,
      requests: 0,
      responses: 0,
      keptBytes: 0,
      ended: undefined,
    });
    this.bumpInFlight(instKey, +1);
    if (this.watchers.size > 0) this.fanOut(service, false, { case: "callStarted", value: started }, startMs);
    const early = this.early.get(id);
    if (early) {
      this.early.delete(id);
      for (const m of early) this.callMessage(m);
    }
  }

  private callHeaders(id: bigint, metadata: MetadataInput | undefined): void {
    const call = this.calls.get(id);
    const headers = create(CallHeadersSchema, { callId: id, metadata: this.redactor.toMap(metadata) });
    if (call) call.headers = headers;
    if (this.watchers.size > 0) this.fanOut(call?.service ?? "", false, { case: "callHeaders", value: headers });
  }

  private callMessage(e: Extract<HubEvent, { type: "callMessage" }>): void {
    const id = BigInt(e.callId);
    const call = this.calls.get(id);
    if (!call) {
      // A router may see a call's request before it has picked an instance (and published
      // callStarted): hold it, bounded, and deliver it after the call's start.
      let early = this.early.get(id);
      if (!early) {
        if (this.early.size >= EARLY_CALLS) this.early.delete(this.early.keys().next().value!);
        this.early.set(id, (early = []));
      }
      if (early.length < EARLY_MESSAGES) early.push(e.time ? e : { ...e, time: new Date() });
      return;
    }
    const record: MessageRecord = {
      callId: id,
      method: call?.method ?? "",
      direction: e.direction,
      size: e.size ?? e.payload?.byteLength ?? 0,
      timeMs: e.time?.getTime() ?? Date.now(),
      payload: undefined,
      decoded: undefined,
      base: undefined,
    };
    if (call) {
      if (e.direction === "request") call.requests++;
      else call.responses++;
      if (this.historyCalls > 0 && call.messages.length < this.historyMessages) {
        call.messages.push(record);
        if (this.historyBodies && e.payload && this.keptBodyBytes + e.payload.byteLength <= this.historyBodyBytes) {
          record.payload = ownBytes(e.payload);
          call.keptBytes += e.payload.byteLength;
          this.keptBodyBytes += e.payload.byteLength;
        }
      } else call.omitted++;
    }
    if (this.messageWatchers === 0) return;
    const payload = record.payload ?? e.payload;
    let plain: Event | undefined;
    let withBody: Event | undefined;
    const pending: PendingEvent = {
      service: call?.service ?? "",
      isMessage: true,
      build: (bodies) =>
        bodies
          ? (withBody ??= this.eventOf({ case: "callMessage", value: this.messageOf(record, payload, true) }, record.timeMs))
          : (plain ??= this.eventOf({ case: "callMessage", value: this.messageOf(record, payload, false) }, record.timeMs)),
    };
    for (const w of this.watchers) w.offer(pending);
  }

  private endCall(e: Extract<HubEvent, { type: "callEnded" }>): void {
    const id = BigInt(e.callId);
    this.early.delete(id);
    const call = this.calls.get(id);
    const endMs = e.time?.getTime() ?? Date.now();
    const durationMs = call ? (e.time ? endMs - call.startMs : performance.now() - call.startPerf) : 0;
    const ended = create(CallEndedSchema, {
      callId: id,
      code: e.code,
      message: e.message ?? "",
      trailers: this.redactor.toMap(e.trailers),
      duration: durationOfMs(durationMs),
      requests: e.requests ?? call?.requests ?? 0,
      responses: e.responses ?? call?.responses ?? 0,
    });
    if (call) {
      this.stats.record(call.service, call.instanceId, durationMs, e.code, endMs);
      if (!this.statsTimer) {
        this.statsTimer = setInterval(() => this.tickStats(), 1000);
        this.statsTimer.unref();
      }
      call.ended = ended;
      this.calls.delete(id);
      this.bumpInFlight(call.instanceKey, -1);
      this.remember(call);
    }
    if (this.watchers.size > 0) this.fanOut(call?.service ?? "", false, { case: "callEnded", value: ended }, endMs);
  }

  private callDecision(e: Extract<HubEvent, { type: "callDecision" }>): void {
    const call = this.calls.get(BigInt(e.callId));
    if (!call) return;
    const d = e.decision;
    const timeMs = e.time?.getTime() ?? Date.now();
    const decision = create(CallDecisionSchema, {
      callId: call.id,
      time: timestampFromMs(timeMs),
      kind: DECISION_KINDS[d.kind],
      attempt: d.attempt,
      instanceId: d.instanceId ?? "",
      reason: d.reason,
      queuedMs: Math.round(d.queuedMs ?? 0),
      code: d.code ?? 0,
      backoffMs: Math.round(d.backoffMs ?? 0),
    });
    // Bounded: a call's attempts are bounded by the retry rule, but a record must be too.
    if (call.decisions.length < MAX_DECISIONS) call.decisions.push(decision);
    if (d.kind === "attempt" && d.instanceId) {
      // The call now runs on another instance: its in-flight count and statistics follow it.
      this.bumpInFlight(call.instanceKey, -1);
      call.instanceKey = instanceKey(call.service, d.instanceId);
      call.instanceId = d.instanceId;
      this.bumpInFlight(call.instanceKey, +1);
    }
    if (this.watchers.size > 0) this.fanOut(call.service, false, { case: "callDecision", value: decision }, timeMs);
  }

  private publishAction(action: Action): void {
    action.time = timestampFromMs(Date.now());
    this.recentActions.push(action);
    if (this.recentActions.length > RECENT_ACTIONS) this.recentActions.shift();
    if (this.watchers.size > 0) this.fanOut(action.service, false, { case: "action", value: action });
  }

  /**
   * What a replay needs of a recorded call (in flight or among the recent ones): its method,
   * kind, metadata as received, and the request bodies kept (undefined when any is missing).
   */
  recordedCall(
    id: bigint,
  ): { method: string; kind: string; metadata: MetadataInput | undefined; redacted: (key: string) => boolean; requests: Uint8Array[] | undefined } | undefined {
    const call = this.calls.get(id) ?? this.recent.find((c) => c.id === id);
    if (!call) return undefined;
    const reqs = call.messages.filter((m) => m.direction === "request");
    const complete = reqs.length === call.requests && call.omitted === 0 && reqs.every((m) => m.payload !== undefined);
    return {
      method: call.method,
      kind: call.started.kind,
      metadata: call.rawMetadata,
      redacted: (key) => this.redactor.isRedacted(key),
      requests: complete ? reqs.map((m) => m.payload!) : undefined,
    };
  }

  /** The request and response schemas of a method, through the hub's `describe` (undefined without one). */
  schemasOf(method: string): ReturnType<DescribeMethod> {
    return this.decoder.schemasOf(method);
  }

  /** Keeps an ended call in the bounded ring, releasing the body bytes of what falls out. */
  private remember(call: CallState): void {
    if (this.historyCalls <= 0) return;
    this.recent.push(call);
    while (this.recent.length > this.historyCalls) {
      const old = this.recent.shift()!;
      this.keptBodyBytes -= old.keptBytes;
    }
  }

  private messageOf(r: MessageRecord, payload: Uint8Array | undefined, withBody: boolean): CallMessage {
    r.base ??= create(CallMessageSchema, {
      callId: r.callId,
      direction: r.direction === "request" ? CallMessage_Direction.REQUEST : CallMessage_Direction.RESPONSE,
      size: r.size,
      time: timestampFromMs(r.timeMs),
    });
    if (!withBody) return r.base;
    r.decoded ??= this.decoder.decode(r.method, r.direction, payload);
    return { ...r.base, json: r.decoded.json, jsonTruncated: r.decoded.truncated, jsonError: r.decoded.error };
  }

  private eventOf(event: Event["event"], timeMs = Date.now()): Event {
    return create(EventSchema, { time: timestampFromMs(timeMs), event });
  }

  private fanOut(service: string, isMessage: boolean, event: Event["event"], timeMs?: number): void {
    const built = this.eventOf(event, timeMs);
    const pending: PendingEvent = { service, isMessage, build: () => built };
    for (const w of this.watchers) w.offer(pending);
  }
}

/** A payload that is a view into a much larger buffer would keep that buffer alive: copy it. */
function ownBytes(payload: Uint8Array): Uint8Array {
  return payload.buffer.byteLength > payload.byteLength * 2 + 1024 ? payload.slice() : payload;
}
