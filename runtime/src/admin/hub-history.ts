// What the hub remembers for snapshots and replays: the instances and their in-flight counts,
// the calls in flight, a bounded ring of recently ended calls with their messages (bodies
// within a byte budget), and the operators' recent actions. It knows no watcher; every
// collection here is bounded.
//
// A call is kept as what the router published (the events' plain objects, read only), not as
// admin protobuf messages: most calls are never looked at, so their CallStarted, CallHeaders
// and CallEnded are built only when a snapshot, a watcher or a replay asks, once, and then
// kept (a watcher and a later snapshot see the very same message).
import { clone, create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  CallRecordSchema,
  InstanceSchema,
  type Action,
  type CallDecision,
  type CallEnded,
  type CallHeaders,
  type CallRecord,
  type CallStarted,
  type Instance,
} from "../gen/grpcrouter/v1/admin_pb.js";
import { ByService } from "./by-service.js";
import type { EventBuilder, MessageRecord } from "./event-builder.js";
import {
  callKey,
  type CallEndedEvent,
  type CallHeadersEvent,
  type CallKey,
  type CallMessageEvent,
  type CallStartedEvent,
  type InstanceUpdate,
} from "./hub-events.js";
import type { MetadataInput } from "./metadata.js";

/** The calls in flight on one instance (by service and id), whether it is registered or not. */
interface InFlightSlot {
  n: number;
  /** The registered instance, whose inFlightCalls follows `n`. */
  instance: Instance | undefined;
}

export interface CallState {
  readonly id: bigint;
  /** The service of `start.method`. */
  readonly service: string;
  /** The instance of the current attempt (a retry elsewhere moves it); "" before the first. */
  instanceId: string;
  /** Where the call is counted in flight (its current instance's), if anywhere. */
  slot: InFlightSlot | undefined;
  /** The callStarted event as published (the call's method, kind…); its metadata is what a replay sends (not redacted). */
  readonly start: CallStartedEvent;
  readonly startMs: number;
  readonly startPerf: number;
  /** Built from `start` on first demand (see HubHistory.startedOf). */
  started: CallStarted | undefined;
  /** The callHeaders event as published (undefined: none yet), and its message once built. */
  headersEvent: CallHeadersEvent | undefined;
  headers: CallHeaders | undefined;
  /** Off the common path (retries, refusals), so built at once; undefined until the first. */
  decisions: CallDecision[] | undefined;
  /** Those kept: the rest of the `requests` and `responses` counted were omitted (see omittedOf). */
  readonly messages: MessageRecord[];
  requests: number;
  responses: number;
  keptBytes: number;
  /** The callEnded event as published and the duration the hub measured; its message once built. */
  end: { readonly event: CallEndedEvent; readonly durationMs: number } | undefined;
  ended: CallEnded | undefined;
}

export interface HistoryLimits {
  /** Recently ended calls kept. */
  calls: number;
  /** Messages kept per call (the rest are counted). */
  messagesPerCall: number;
  /** Keep message bytes (only when bodies can be decoded). */
  bodies: boolean;
  /** Total bytes of kept bodies across all kept calls. */
  bodyBytes: number;
}

/** What a replay needs of a recorded call (see `AdminHub.recordedCall`). */
export interface RecordedCall {
  method: string;
  kind: string;
  metadata: MetadataInput | undefined;
  redacted: (key: string) => boolean;
  requests: Uint8Array[] | undefined;
}

const MAX_DECISIONS = 32;
const RECENT_ACTIONS = 50;
/** Bounds of the messages held for calls not started yet. */
const EARLY_CALLS = 1024;
const EARLY_MESSAGES = 16;

export function serviceOf(method: string): string {
  const m = /^\/?([^/]+)\//.exec(method);
  return m ? m[1]! : "";
}

/** Bound of the method paths whose service is remembered (the router publishes its routed methods). */
const METHOD_CACHE = 1024;

const instanceKey = (service: string, id: string) => `${service}\u0000${id}`;

export class HubHistory {
  private readonly instances = new Map<string, Instance>();
  /**
   * By service, then instance id: no key string is built per call. A slot is kept while its
   * instance has calls in flight, or had and is registered (an idle one of 10,000 keeps none).
   */
  private readonly inFlight = new ByService<InFlightSlot>();
  private readonly services = new Map<string, string>();
  private readonly calls = new Map<CallKey, CallState>();
  /** Messages published before their call's callStarted, by call id (see `holdEarly`). */
  private readonly early = new Map<CallKey, CallMessageEvent[]>();
  private readonly recent: CallState[] = [];
  private keptBodyBytes = 0;
  private readonly recentActions: Action[] = [];

  constructor(
    private readonly limits: HistoryLimits,
    private readonly build: EventBuilder,
  ) {}

  /** Whether ended calls keep their messages (so the router must publish them). */
  get keepsMessages(): boolean {
    return this.limits.messagesPerCall > 0 && this.limits.calls > 0;
  }

  /** Whether ended calls keep message bytes (so the router must publish payloads). */
  get keepsBodies(): boolean {
    return this.limits.bodies && this.keepsMessages;
  }

  // ---- instances ----

  /** The instance after the change (live: clone it before handing it out), and whether it is new. */
  upsertInstance(info: InstanceUpdate): { instance: Instance; isNew: boolean } {
    const key = instanceKey(info.service, info.id);
    let inst = this.instances.get(key);
    const isNew = !inst;
    if (!inst) {
      inst = create(InstanceSchema, { id: info.id, service: info.service, registeredAt: timestampFromMs(Date.now()) });
      this.instances.set(key, inst);
    }
    this.build.applyInstance(inst, info, isNew);
    const slot = this.inFlight.get(info.service, info.id);
    if (slot) slot.instance = inst;
    inst.inFlightCalls = slot?.n ?? 0;
    return { instance: inst, isNew };
  }

  /** The removed instance (or a bare one when it was unknown). */
  removeInstance(service: string, id: string): Instance {
    const key = instanceKey(service, id);
    const inst = this.instances.get(key) ?? create(InstanceSchema, { id, service });
    this.instances.delete(key);
    const slot = this.inFlight.get(service, id);
    if (slot) {
      slot.instance = undefined;
      if (slot.n === 0) this.inFlight.delete(service, id);
    }
    return inst;
  }

  /** Counts the call in flight on its current instance (its first call makes the slot). */
  private countIn(call: CallState): void {
    const { service, instanceId } = call;
    if (!instanceId) return;
    let slot = this.inFlight.get(service, instanceId);
    if (!slot) this.inFlight.set(service, instanceId, (slot = { n: 0, instance: this.instances.get(instanceKey(service, instanceId)) }));
    slot.n++;
    if (slot.instance) slot.instance.inFlightCalls = slot.n;
    call.slot = slot;
  }

  /** Counts the call out of where it was counted in. */
  private countOut(call: CallState): void {
    const slot = call.slot;
    if (!slot) return;
    call.slot = undefined;
    slot.n--;
    if (slot.instance) slot.instance.inFlightCalls = slot.n;
    else if (slot.n === 0 && this.inFlight.get(call.service, call.instanceId) === slot) this.inFlight.delete(call.service, call.instanceId);
  }

  /** The service of a method path, parsed once per path. */
  private serviceOf(method: string): string {
    let service = this.services.get(method);
    if (service === undefined) {
      if (this.services.size >= METHOD_CACHE) this.services.clear();
      this.services.set(method, (service = serviceOf(method)));
    }
    return service;
  }

  // ---- calls ----

  call(key: CallKey): CallState | undefined {
    return this.calls.get(key);
  }

  /** Records the call's start (the messages that came before it are `takeEarly`'s). */
  startCall(e: CallStartedEvent, key: CallKey, startMs: number): CallState {
    const call: CallState = {
      id: BigInt(e.callId),
      service: this.serviceOf(e.method),
      instanceId: e.instanceId ?? "",
      slot: undefined,
      start: e,
      startMs,
      startPerf: performance.now(),
      started: undefined,
      headersEvent: undefined,
      headers: undefined,
      decisions: undefined,
      messages: [],
      requests: 0,
      responses: 0,
      keptBytes: 0,
      end: undefined,
      ended: undefined,
    };
    this.calls.set(key, call);
    this.countIn(call);
    return call;
  }

  /**
   * A message of a call not started yet: a router may see a call's request before it has
   * picked an instance (and published callStarted). Held, bounded, until the call starts.
   */
  holdEarly(key: CallKey, e: CallMessageEvent): void {
    let early = this.early.get(key);
    if (!early) {
      if (this.early.size >= EARLY_CALLS) this.early.delete(this.early.keys().next().value!);
      this.early.set(key, (early = []));
    }
    if (early.length < EARLY_MESSAGES) early.push(e.time ? e : { ...e, time: new Date() });
  }

  /** Counts the message and keeps it within the limits; returns its record when it is kept or `always` (a watcher takes it). */
  recordMessage(call: CallState, e: CallMessageEvent, always: boolean): MessageRecord | undefined {
    if (e.direction === "request") call.requests++;
    else call.responses++;
    const keep = this.limits.calls > 0 && call.messages.length < this.limits.messagesPerCall;
    if (!keep && !always) return undefined;
    const record: MessageRecord = {
      callId: call.id,
      method: call.start.method,
      direction: e.direction,
      size: e.size ?? e.payload?.byteLength ?? 0,
      timeMs: e.time?.getTime() ?? Date.now(),
      payload: undefined,
      decoded: undefined,
      base: undefined,
    };
    if (keep) {
      call.messages.push(record);
      if (this.limits.bodies && e.payload && this.keptBodyBytes + e.payload.byteLength <= this.limits.bodyBytes) {
        record.payload = ownBytes(e.payload);
        call.keptBytes += e.payload.byteLength;
        this.keptBodyBytes += e.payload.byteLength;
      }
    }
    return record;
  }

  /** Removes and returns the messages held for a call: it started (record them now), or ended without starting. */
  takeEarly(key: CallKey): CallMessageEvent[] | undefined {
    if (this.early.size === 0) return undefined;
    const early = this.early.get(key);
    if (early) this.early.delete(key);
    return early;
  }

  /** The response headers came (as published; built into a message on demand). */
  recordHeaders(call: CallState, e: CallHeadersEvent): void {
    call.headersEvent = e;
    call.headers = undefined;
  }

  /** The call (by `key`) ended: it leaves the calls in flight for the ring of recent ones. */
  endCall(call: CallState, key: CallKey, event: CallEndedEvent, durationMs: number): void {
    call.end = { event, durationMs };
    this.calls.delete(key);
    this.countOut(call);
    if (this.limits.calls <= 0) return;
    this.recent.push(call);
    while (this.recent.length > this.limits.calls) {
      const old = this.recent.shift()!;
      this.keptBodyBytes -= old.keptBytes;
    }
  }

  /** Keeps the decision (bounded); an attempt on another instance moves the call's in-flight count there. */
  recordDecision(call: CallState, decision: CallDecision, attemptOn: string | undefined): void {
    // Bounded: a call's attempts are bounded by the retry rule, but a record must be too.
    const decisions = (call.decisions ??= []);
    if (decisions.length < MAX_DECISIONS) decisions.push(decision);
    if (attemptOn) {
      this.countOut(call);
      call.instanceId = attemptOn;
      this.countIn(call);
    }
  }

  // ---- a call's messages, built on first demand and kept ----

  startedOf(call: CallState): CallStarted {
    return (call.started ??= this.build.callStarted(call.start, call.id, call.startMs));
  }

  /** Undefined until the response headers came. */
  headersOf(call: CallState): CallHeaders | undefined {
    if (!call.headersEvent) return undefined;
    return (call.headers ??= this.build.callHeaders(call.id, call.headersEvent.metadata));
  }

  /** Undefined while the call is in flight. Its counts are final: messages after the end are not the call's. */
  endedOf(call: CallState): CallEnded | undefined {
    if (!call.end) return undefined;
    return (call.ended ??= this.build.callEnded(call.end.event, call.id, call.end.durationMs, call));
  }

  recordAction(action: Action): void {
    this.recentActions.push(action);
    if (this.recentActions.length > RECENT_ACTIONS) this.recentActions.shift();
  }

  // ---- reading ----

  /** The parts of a snapshot the history holds, for the services `keep` accepts. */
  snapshotParts(
    keep: (service: string) => boolean,
    withMessages: boolean,
    withBodies: boolean,
  ): { instances: Instance[]; callsInFlight: CallStarted[]; calls: CallRecord[]; actions: Action[] } {
    const instances = [...this.instances.values()].filter((i) => keep(i.service)).map((i) => clone(InstanceSchema, i));
    const inFlight = [...this.calls.values()].filter((c) => keep(c.service));
    const calls: CallRecord[] = [];
    for (const c of [...this.recent, ...inFlight]) {
      if (!keep(c.service)) continue;
      calls.push(
        create(CallRecordSchema, {
          started: this.startedOf(c),
          headers: this.headersOf(c),
          ended: this.endedOf(c),
          messages: withMessages ? c.messages.map((m) => this.build.callMessage(m, m.payload, withBodies)) : [],
          messagesOmitted: withMessages ? omittedOf(c) : c.requests + c.responses,
          decisions: c.decisions ?? [],
        }),
      );
    }
    return {
      instances,
      callsInFlight: inFlight.map((c) => this.startedOf(c)),
      calls,
      actions: this.recentActions.filter((a) => keep(a.service)),
    };
  }

  /** A call in flight or among the recent ones, as a replay needs it. */
  recordedCall(id: bigint, redacted: (key: string) => boolean): RecordedCall | undefined {
    const call = this.calls.get(callKey(id)) ?? this.recent.find((c) => c.id === id);
    if (!call) return undefined;
    const reqs = call.messages.filter((m) => m.direction === "request");
    const complete = reqs.length === call.requests && omittedOf(call) === 0 && reqs.every((m) => m.payload !== undefined);
    return {
      method: call.start.method,
      kind: call.start.kind ?? "",
      metadata: call.start.metadata,
      redacted,
      requests: complete ? reqs.map((m) => m.payload!) : undefined,
    };
  }
}

/** The call's messages counted but not kept (past the per-call limit, or no history kept). */
function omittedOf(call: CallState): number {
  return call.requests + call.responses - call.messages.length;
}

/**
 * A payload that is a view into a much larger buffer (the router's are: slices of what the
 * socket read) would keep that buffer alive: copy it. Not with `slice()`, which on a Buffer is
 * another view of the same memory.
 */
function ownBytes(payload: Uint8Array): Uint8Array {
  if (payload.byteLength === 0) return NO_BYTES;
  return payload.buffer.byteLength > payload.byteLength * 2 + 1024 ? new Uint8Array(payload) : payload;
}
const NO_BYTES = new Uint8Array(0);
