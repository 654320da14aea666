// Prometheus metrics of a router, computed from the events it publishes to its AdminHub.
//
// The metrics listen with `hub.onEvent`, which sees every event synchronously (watchers may
// drop events under load; counters must not). The gRPC ones carry the names and labels of
// go-grpc-prometheus, so existing gRPC dashboards and alerts work unchanged; the router's own
// ones (instances, per-instance calls, registrations, bytes) are prefixed "grpcrouter_".
//
// Label cardinality stays bounded: methods are those of the routed services (the router
// answers unknown methods itself, without events), codes are the 17 gRPC codes, and
// per-instance series are removed when their instance deregisters.
//
// Per call, counters are plain numbers kept with the method or instance they count (a Tally),
// handed to prom-client when it is scraped: prom-client hashes the labels of every update,
// and seven such updates a call cost more than everything else here. Only the latency
// histogram is updated per call.
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { Instance_Health } from "../gen/grpcrouter/v1/admin_pb.js";
import type { AdminHub, HealthInput, HubEvent } from "../admin/hub.js";
import { ByService } from "../admin/by-service.js";
import { callKey, type CallKey } from "../admin/hub-events.js";
import { grpcCodeName, grpcTypeName } from "./codes.js";

export interface RouterMetricsOptions {
  /** The hub the router publishes to (`createRouter({ hub })`). */
  hub: AdminHub;
  /** Where the metrics are registered. Default: a registry of their own (see `registry`). */
  registry?: Registry;
  /** Prefix of the router's own metrics (not of the standard grpc_server_* ones). Default "grpcrouter_". */
  prefix?: string;
  /** Buckets of grpc_server_handling_seconds. Default: Prometheus' (5 ms … 10 s). */
  handlingSecondsBuckets?: number[];
}

/** Something that renders the text exposition format; a prom-client Registry is one. */
export interface MetricsSource {
  readonly contentType: string;
  metrics(): Promise<string>;
}

export interface RouterMetrics extends MetricsSource {
  readonly registry: Registry;
  /** Counts one request to the Admin service (`addAdminService(…, { onRequest })`) by method. */
  countAdminRequest(method: string): void;
  /** Stops listening to the hub; the series stay registered with their last values. */
  close(): void;
}

const HEALTHS = ["serving", "not_serving", "draining", "ejected"] as const;
type Health = (typeof HEALTHS)[number];

const HEALTH_OF_ENUM: Partial<Record<Instance_Health, Health>> = {
  [Instance_Health.SERVING]: "serving",
  [Instance_Health.NOT_SERVING]: "not_serving",
  [Instance_Health.DRAINING]: "draining",
  [Instance_Health.EJECTED]: "ejected",
};

function healthOf(h: HealthInput | undefined, fallback: Health): Health {
  if (h === undefined) return fallback;
  if (typeof h === "string") return (HEALTHS as readonly string[]).includes(h) ? h : fallback;
  return HEALTH_OF_ENUM[h] ?? fallback;
}

/** A counter's series, counted here and added to prom-client's counter when scraped. */
interface Tally<L extends object = Record<string, string>> {
  readonly labels: L;
  n: number;
  /** What prom-client has been given so far. */
  flushed: number;
}

const tally = <L extends object>(labels: L): Tally<L> => ({ labels, n: 0, flushed: 0 });

/** Gives prom-client what the tally counted since the last scrape. */
function flush(counter: Counter, t: Tally<object> | undefined): void {
  if (!t || t.n === t.flushed) return;
  counter.inc(t.labels as Record<string, string>, t.n - t.flushed);
  t.flushed = t.n;
}

interface InstanceState {
  readonly service: string;
  readonly id: string;
  health: Health;
  inFlight: number;
  /** This instance's grpcrouter_instance_calls_total by status code; removed with it.
   *  Made on its first call (an idle instance of 10,000 keeps no Map). */
  codes: Map<number, Tally> | undefined;
}

/** One method's series, their label objects built once. */
interface MethodSeries {
  readonly service: string;
  readonly labels: { grpc_type: string; grpc_service: string; grpc_method: string };
  readonly started: Tally;
  readonly received: Tally;
  readonly sent: Tally;
  /** By status code, with grpc_code. */
  readonly handled: Array<Tally | undefined>;
  readonly bytes: { readonly request: Tally; readonly response: Tally };
}

interface CallState {
  readonly method: MethodSeries;
  /** The instance as it was when the call started: a re-registration is another instance. */
  readonly instance: InstanceState | undefined;
  readonly startMs: number | undefined;
  readonly startPerf: number;
}

interface EarlyMessages {
  requests: number;
  requestBytes: number;
  responses: number;
  responseBytes: number;
}

/** Bound of the calls whose messages came before their callStarted (see onMessage). */
const EARLY_CALLS = 1024;

/**
 * Registers the router's metrics and keeps them current from `hub`'s events. Create it
 * before the router so it counts from the first call; instances the hub already knows are
 * taken from its snapshot.
 */
export function createRouterMetrics(options: RouterMetricsOptions): RouterMetrics {
  const { hub } = options;
  const registry = options.registry ?? new Registry();
  const prefix = options.prefix ?? "grpcrouter_";
  if (!/^([a-zA-Z_:][a-zA-Z0-9_:]*)?$/.test(prefix)) {
    throw new Error(`createRouterMetrics: prefix ${JSON.stringify(prefix)} cannot start a metric name (letters, digits, "_" and ":", not a digit first)`);
  }
  if (registry.getSingleMetric("grpc_server_started_total")) {
    throw new Error("createRouterMetrics: this registry has the router's metrics already; routers that share a hub share one createRouterMetrics");
  }
  const registers = [registry];
  const methodLabelNames = ["grpc_type", "grpc_service", "grpc_method"] as const;

  const instances = new ByService<InstanceState>();
  const calls = new Map<CallKey, CallState>();
  const early = new Map<CallKey, EarlyMessages>();
  const methods = new Map<string, Map<string | undefined, MethodSeries>>();
  /** A counter whose series are tallies kept with each method (`tallies` picks them), handed over when scraped. */
  const methodCounter = (name: string, help: string, labelNames: readonly string[], tallies: (m: MethodSeries) => Iterable<Tally | undefined>) =>
    new Counter({
      name,
      help,
      labelNames,
      registers,
      collect() {
        for (const byKind of methods.values()) for (const m of byKind.values()) for (const t of tallies(m)) flush(this, t);
      },
    });

  methodCounter("grpc_server_started_total", "Total number of RPCs started on the server.", methodLabelNames, (m) => [m.started]);
  methodCounter(
    "grpc_server_handled_total",
    "Total number of RPCs completed on the server, regardless of success or failure.",
    [...methodLabelNames, "grpc_code"],
    (m) => m.handled,
  );
  methodCounter("grpc_server_msg_received_total", "Total number of RPC stream messages received on the server.", methodLabelNames, (m) => [m.received]);
  methodCounter("grpc_server_msg_sent_total", "Total number of gRPC stream messages sent by the server.", methodLabelNames, (m) => [m.sent]);
  const handling = new Histogram({
    name: "grpc_server_handling_seconds",
    help: "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
    labelNames: methodLabelNames,
    ...(options.handlingSecondsBuckets ? { buckets: options.handlingSecondsBuckets } : {}),
    registers,
  });

  // Gauges are computed when scraped, from the state above: nothing to keep in step per call,
  // and a deregistered instance's series simply is not there any more.
  new Gauge({
    name: `${prefix}instances`,
    help: "Registered instances by service and health (serving, not_serving, draining, ejected).",
    labelNames: ["service", "health"],
    registers,
    collect() {
      this.reset();
      const counts = new Map<string, Record<Health, number>>();
      const zero = (): Record<Health, number> => ({ serving: 0, not_serving: 0, draining: 0, ejected: 0 });
      // Every routed service has its series, at 0 when nothing is registered: alert on it.
      for (const s of hub.serviceNames) counts.set(s, zero());
      for (const i of instances.values()) {
        let c = counts.get(i.service);
        if (!c) counts.set(i.service, (c = zero()));
        c[i.health]++;
      }
      for (const [service, c] of counts) for (const health of HEALTHS) this.set({ service, health }, c[health]);
    },
  });
  new Gauge({
    name: `${prefix}calls_in_flight`,
    help: "Calls being handled by each registered instance.",
    labelNames: ["service", "instance"],
    registers,
    collect() {
      this.reset();
      for (const i of instances.values()) this.set({ service: i.service, instance: i.id }, i.inFlight);
    },
  });
  const instanceCalls = new Counter({
    name: `${prefix}instance_calls_total`,
    help: "Calls handled by each registered instance, by gRPC status code (removed when the instance deregisters).",
    labelNames: ["service", "instance", "grpc_code"],
    registers,
    collect() {
      for (const i of instances.values()) if (i.codes) for (const t of i.codes.values()) flush(this, t);
    },
  });
  const registrations = new Counter({
    name: `${prefix}instance_registrations_total`,
    help: "Instances that registered, by service.",
    labelNames: ["service"],
    registers,
  });
  const deregistrations = new Counter({
    name: `${prefix}instance_deregistrations_total`,
    help: "Instances that deregistered (left, drained or lost their streams), by service.",
    labelNames: ["service"],
    registers,
  });
  // A service's methods share its two series: each adds what it counted.
  methodCounter(
    `${prefix}tunnelled_bytes_total`,
    "Bytes of messages tunnelled between clients and instances (encoded messages, without framing), by direction.",
    ["service", "direction"],
    (m) => [m.bytes.request, m.bytes.response],
  );

  function methodOf(path: string, kind: string | undefined): MethodSeries {
    let byKind = methods.get(path);
    if (!byKind) methods.set(path, (byKind = new Map()));
    let m = byKind.get(kind);
    if (!m) {
      const match = /^\/?([^/]+)\/([^/]+)$/.exec(path);
      const service = match?.[1] ?? "";
      const method = match?.[2] ?? path;
      const labels = { grpc_type: grpcTypeName(kind), grpc_service: service, grpc_method: method };
      m = {
        service,
        labels,
        started: tally(labels),
        received: tally(labels),
        sent: tally(labels),
        handled: [],
        bytes: { request: tally({ service, direction: "request" }), response: tally({ service, direction: "response" }) },
      };
      byKind.set(kind, m);
    }
    return m;
  }

  function upsertInstance(service: string, id: string, health: HealthInput | undefined): void {
    const known = instances.get(service, id);
    if (known) {
      known.health = healthOf(health, known.health);
      return;
    }
    instances.set(service, id, { service, id, health: healthOf(health, "serving"), inFlight: 0, codes: undefined });
    registrations.inc({ service });
  }

  function removeInstance(service: string, id: string): void {
    const inst = instances.get(service, id);
    if (!inst) return;
    instances.delete(service, id);
    deregistrations.inc({ service });
    for (const t of inst.codes?.values() ?? []) instanceCalls.remove(t.labels);
  }

  function countMessages(m: MethodSeries, direction: "request" | "response", n: number, size: number): void {
    if (direction === "request") m.received.n += n;
    else m.sent.n += n;
    if (size > 0) m.bytes[direction].n += size;
  }

  function onEvent(e: HubEvent): void {
    switch (e.type) {
      case "instanceRegistered":
      case "instanceChanged":
        return upsertInstance(e.instance.service, e.instance.id, e.instance.health);
      case "instanceDeregistered":
        return removeInstance(e.instance.service, e.instance.id);
      case "callStarted": {
        const id = callKey(e.callId);
        const method = methodOf(e.method, e.kind);
        const instance = e.instanceId !== undefined ? instances.get(method.service, e.instanceId) : undefined;
        if (instance) instance.inFlight++;
        calls.set(id, { method, instance, startMs: e.time?.getTime(), startPerf: performance.now() });
        method.started.n++;
        const pending = early.size > 0 ? early.get(id) : undefined;
        if (pending) {
          early.delete(id);
          if (pending.requests > 0) countMessages(method, "request", pending.requests, pending.requestBytes);
          if (pending.responses > 0) countMessages(method, "response", pending.responses, pending.responseBytes);
        }
        return;
      }
      case "callMessage": {
        const id = callKey(e.callId);
        const size = e.size ?? e.payload?.byteLength ?? 0;
        const call = calls.get(id);
        if (call) return countMessages(call.method, e.direction, 1, size);
        // A client may stream requests while its call waits for an instance, before the call
        // is announced (and its method known): count them when it is.
        let pending = early.get(id);
        if (!pending) {
          if (early.size >= EARLY_CALLS) early.delete(early.keys().next().value!);
          early.set(id, (pending = { requests: 0, requestBytes: 0, responses: 0, responseBytes: 0 }));
        }
        if (e.direction === "request") {
          pending.requests++;
          pending.requestBytes += size;
        } else {
          pending.responses++;
          pending.responseBytes += size;
        }
        return;
      }
      case "callEnded": {
        const id = callKey(e.callId);
        if (early.size > 0) early.delete(id);
        const call = calls.get(id);
        if (!call) return;
        calls.delete(id);
        // Codes outside 0..16 share Unknown's labels (2), as their name does.
        const code = Number.isInteger(e.code) && e.code >= 0 && e.code <= 16 ? e.code : 2;
        const m = call.method;
        (m.handled[code] ??= tally({ ...m.labels, grpc_code: grpcCodeName(code) })).n++;
        const ms = call.startMs !== undefined && e.time ? e.time.getTime() - call.startMs : performance.now() - call.startPerf;
        handling.observe(call.method.labels, Math.max(0, ms) / 1000);
        const inst = call.instance;
        // Only while that same registration is current: a deregistered instance has no series.
        if (inst && instances.get(inst.service, inst.id) === inst) {
          inst.inFlight = Math.max(0, inst.inFlight - 1);
          let t = inst.codes?.get(code);
          if (!t) (inst.codes ??= new Map()).set(code, (t = tally({ service: inst.service, instance: inst.id, grpc_code: grpcCodeName(code) })));
          t.n++;
        }
        return;
      }
      case "callHeaders":
        return;
    }
  }

  // Instances registered before the metrics were created (their calls in flight are not known).
  for (const i of hub.snapshot({}).instances) {
    instances.set(i.service, i.id, { service: i.service, id: i.id, health: healthOf(i.health, "serving"), inFlight: 0, codes: undefined });
  }
  const stop = hub.onEvent(onEvent);

  // Who reads the router's state, and how: a client polling GetSnapshot shows here.
  const adminRequests = new Counter({
    name: `${prefix}admin_requests_total`,
    help: "Requests to the grpcrouter.v1.Admin service by method.",
    labelNames: ["method"],
    registers,
  });

  return {
    registry,
    countAdminRequest: (method) => adminRequests.inc({ method }),
    get contentType() {
      return registry.contentType;
    },
    metrics: () => registry.metrics(),
    close: stop,
  };
}
