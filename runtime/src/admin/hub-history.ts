// What the hub remembers for snapshots and replays: the instances and their in-flight counts,
// the calls in flight, a bounded ring of recently ended calls with their messages (bodies
// within a byte budget), and the operators' recent actions. It builds no event and knows no
// watcher; every collection here is bounded.
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
import type { EventBuilder, MessageRecord } from "./event-builder.js";
import type { HubEvent, InstanceInfo } from "./hub-events.js";
import type { MetadataInput } from "./metadata.js";

type CallMessageEvent = Extract<HubEvent, { type: "callMessage" }>;

export interface CallState {
  readonly id: bigint;
  readonly method: string;
  readonly service: string;
  /** The instance of the current attempt (a retry elsewhere moves it); "" before the first. */
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

const instanceKey = (service: string, id: string) => `${service}\u0000${id}`;

export class HubHistory {
  private readonly instances = new Map<string, Instance>();
  private readonly inFlightPerInstance = new Map<string, number>();
  private readonly calls = new Map<bigint, CallState>();
  /** Messages published before their call's callStarted, by call id (see `recordMessage`). */
  private readonly early = new Map<bigint, CallMessageEvent[]>();
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
  upsertInstance(info: Partial<InstanceInfo> & { id: string; service: string }): { instance: Instance; isNew: boolean } {
    const key = instanceKey(info.service, info.id);
    let inst = this.instances.get(key);
    const isNew = !inst;
    if (!inst) {
      inst = create(InstanceSchema, { id: info.id, service: info.service, registeredAt: timestampFromMs(Date.now()) });
      this.instances.set(key, inst);
    }
    this.build.applyInstance(inst, info, isNew);
    inst.inFlightCalls = this.inFlightPerInstance.get(key) ?? 0;
    return { instance: inst, isNew };
  }

  /** The removed instance (or a bare one when it was unknown). */
  removeInstance(service: string, id: string): Instance {
    const key = instanceKey(service, id);
    const inst = this.instances.get(key) ?? create(InstanceSchema, { id, service });
    this.instances.delete(key);
    return inst;
  }

  /** Counts the call in or out of its current instance's calls in flight. */
  private bumpInFlight(call: CallState, delta: number): void {
    if (!call.instanceId) return;
    const key = instanceKey(call.service, call.instanceId);
    const n = Math.max(0, (this.inFlightPerInstance.get(key) ?? 0) + delta);
    if (n === 0) this.inFlightPerInstance.delete(key);
    else this.inFlightPerInstance.set(key, n);
    const inst = this.instances.get(key);
    if (inst) inst.inFlightCalls = n;
  }

  // ---- calls ----

  call(id: bigint): CallState | undefined {
    return this.calls.get(id);
  }

  /** Records the call's start; returns it with the messages that arrived before it, to record now. */
  startCall(
    e: Extract<HubEvent, { type: "callStarted" }>,
    id: bigint,
    started: CallStarted,
    startMs: number,
  ): { call: CallState; early: CallMessageEvent[] | undefined } {
    const service = serviceOf(e.method);
    const call: CallState = {
      id,
      method: e.method,
      service,
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
    };
    this.calls.set(id, call);
    this.bumpInFlight(call, +1);
    const early = this.early.get(id);
    if (early) this.early.delete(id);
    return { call, early };
  }

  /**
   * Counts the message and keeps it within the limits. A router may see a call's request
   * before it has picked an instance (and published callStarted): such a message is held,
   * bounded, until the call starts, and undefined is returned.
   */
  recordMessage(e: CallMessageEvent, id: bigint): { call: CallState; record: MessageRecord } | undefined {
    const call = this.calls.get(id);
    if (!call) {
      let early = this.early.get(id);
      if (!early) {
        if (this.early.size >= EARLY_CALLS) this.early.delete(this.early.keys().next().value!);
        this.early.set(id, (early = []));
      }
      if (early.length < EARLY_MESSAGES) early.push(e.time ? e : { ...e, time: new Date() });
      return undefined;
    }
    const record: MessageRecord = {
      callId: id,
      method: call.method,
      direction: e.direction,
      size: e.size ?? e.payload?.byteLength ?? 0,
      timeMs: e.time?.getTime() ?? Date.now(),
      payload: undefined,
      decoded: undefined,
      base: undefined,
    };
    if (e.direction === "request") call.requests++;
    else call.responses++;
    if (this.limits.calls > 0 && call.messages.length < this.limits.messagesPerCall) {
      call.messages.push(record);
      if (this.limits.bodies && e.payload && this.keptBodyBytes + e.payload.byteLength <= this.limits.bodyBytes) {
        record.payload = ownBytes(e.payload);
        call.keptBytes += e.payload.byteLength;
        this.keptBodyBytes += e.payload.byteLength;
      }
    } else call.omitted++;
    return { call, record };
  }

  /** Drops the messages held for a call that ends without having started. */
  forgetEarly(id: bigint): void {
    this.early.delete(id);
  }

  /** The call ended: it leaves the calls in flight for the ring of recent ones. */
  endCall(call: CallState, ended: CallEnded): void {
    call.ended = ended;
    this.calls.delete(call.id);
    this.bumpInFlight(call, -1);
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
    if (call.decisions.length < MAX_DECISIONS) call.decisions.push(decision);
    if (attemptOn) {
      this.bumpInFlight(call, -1);
      call.instanceId = attemptOn;
      this.bumpInFlight(call, +1);
    }
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
          started: c.started,
          headers: c.headers,
          ended: c.ended,
          messages: withMessages ? c.messages.map((m) => this.build.callMessage(m, m.payload, withBodies)) : [],
          messagesOmitted: withMessages ? c.omitted : c.omitted + c.messages.length,
          decisions: c.decisions,
        }),
      );
    }
    return {
      instances,
      callsInFlight: inFlight.map((c) => c.started),
      calls,
      actions: this.recentActions.filter((a) => keep(a.service)),
    };
  }

  /** A call in flight or among the recent ones, as a replay needs it. */
  recordedCall(id: bigint, redacted: (key: string) => boolean): RecordedCall | undefined {
    const call = this.calls.get(id) ?? this.recent.find((c) => c.id === id);
    if (!call) return undefined;
    const reqs = call.messages.filter((m) => m.direction === "request");
    const complete = reqs.length === call.requests && call.omitted === 0 && reqs.every((m) => m.payload !== undefined);
    return {
      method: call.method,
      kind: call.started.kind,
      metadata: call.rawMetadata,
      redacted,
      requests: complete ? reqs.map((m) => m.payload!) : undefined,
    };
  }
}

/** A payload that is a view into a much larger buffer would keep that buffer alive: copy it. */
function ownBytes(payload: Uint8Array): Uint8Array {
  return payload.buffer.byteLength > payload.byteLength * 2 + 1024 ? payload.slice() : payload;
}
