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
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { Instance_Health } from "../gen/grpcrouter/v1/admin_pb.js";
import type { AdminHub, CallId, HealthInput, HubEvent } from "../admin/hub.js";
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

interface InstanceState {
  readonly service: string;
  readonly id: string;
  health: Health;
  inFlight: number;
  /** This instance's grpcrouter_instance_calls_total labels by status code; removed with it.
   *  Made on its first call (an idle instance of 10,000 keeps no Map). */
  codes: Map<number, { service: string; instance: string; grpc_code: string }> | undefined;
}

/**
 * The label objects of one method, built once: prom-client hashes the labels of every update,
 * and building them per call (a spread for grpc_code) costs more than the update itself.
 */
interface MethodLabels {
  readonly service: string;
  readonly labels: { grpc_type: string; grpc_service: string; grpc_method: string };
  /** By status code, with grpc_code. */
  readonly handled: Array<MethodLabels["labels"] & { grpc_code: string }>;
  readonly bytes: { readonly request: { service: string; direction: string }; readonly response: { service: string; direction: string } };
}

interface CallState {
  readonly method: MethodLabels;
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

const idOf = (id: CallId): bigint => (typeof id === "bigint" ? id : BigInt(id));
const instanceKey = (service: string, id: string) => `${service}\u0000${id}`;

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

  const started = new Counter({
    name: "grpc_server_started_total",
    help: "Total number of RPCs started on the server.",
    labelNames: methodLabelNames,
    registers,
  });
  const handled = new Counter({
    name: "grpc_server_handled_total",
    help: "Total number of RPCs completed on the server, regardless of success or failure.",
    labelNames: [...methodLabelNames, "grpc_code"],
    registers,
  });
  const received = new Counter({
    name: "grpc_server_msg_received_total",
    help: "Total number of RPC stream messages received on the server.",
    labelNames: methodLabelNames,
    registers,
  });
  const sent = new Counter({
    name: "grpc_server_msg_sent_total",
    help: "Total number of gRPC stream messages sent by the server.",
    labelNames: methodLabelNames,
    registers,
  });
  const handling = new Histogram({
    name: "grpc_server_handling_seconds",
    help: "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
    labelNames: methodLabelNames,
    ...(options.handlingSecondsBuckets ? { buckets: options.handlingSecondsBuckets } : {}),
    registers,
  });

  const instances = new Map<string, InstanceState>();
  const calls = new Map<bigint, CallState>();
  const early = new Map<bigint, EarlyMessages>();
  const methods = new Map<string, MethodLabels>();

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
  const bytes = new Counter({
    name: `${prefix}tunnelled_bytes_total`,
    help: "Bytes of messages tunnelled between clients and instances (encoded messages, without framing), by direction.",
    labelNames: ["service", "direction"],
    registers,
  });

  function methodOf(path: string, kind: string | undefined): MethodLabels {
    const key = `${kind ?? ""} ${path}`;
    let m = methods.get(key);
    if (!m) {
      const match = /^\/?([^/]+)\/([^/]+)$/.exec(path);
      const service = match?.[1] ?? "";
      const method = match?.[2] ?? path;
      m = {
        service,
        labels: { grpc_type: grpcTypeName(kind), grpc_service: service, grpc_method: method },
        handled: [],
        bytes: { request: { service, direction: "request" }, response: { service, direction: "response" } },
      };
      methods.set(key, m);
    }
    return m;
  }

  function upsertInstance(service: string, id: string, health: HealthInput | undefined): void {
    const key = instanceKey(service, id);
    const known = instances.get(key);
    if (known) {
      known.health = healthOf(health, known.health);
      return;
    }
    instances.set(key, { service, id, health: healthOf(health, "serving"), inFlight: 0, codes: undefined });
    registrations.inc({ service });
  }

  function removeInstance(service: string, id: string): void {
    const key = instanceKey(service, id);
    const inst = instances.get(key);
    if (!inst) return;
    instances.delete(key);
    deregistrations.inc({ service });
    for (const labels of inst.codes?.values() ?? []) instanceCalls.remove(labels);
  }

  function countMessages(m: MethodLabels, direction: "request" | "response", n: number, size: number): void {
    if (direction === "request") received.inc(m.labels, n);
    else sent.inc(m.labels, n);
    if (size > 0) bytes.inc(m.bytes[direction], size);
  }

  function onEvent(e: HubEvent): void {
    switch (e.type) {
      case "instanceRegistered":
      case "instanceChanged":
        return upsertInstance(e.instance.service, e.instance.id, e.instance.health);
      case "instanceDeregistered":
        return removeInstance(e.instance.service, e.instance.id);
      case "callStarted": {
        const id = idOf(e.callId);
        const method = methodOf(e.method, e.kind);
        const instance = e.instanceId !== undefined ? instances.get(instanceKey(method.service, e.instanceId)) : undefined;
        if (instance) instance.inFlight++;
        calls.set(id, { method, instance, startMs: e.time?.getTime(), startPerf: performance.now() });
        started.inc(method.labels);
        const pending = early.get(id);
        if (pending) {
          early.delete(id);
          if (pending.requests > 0) countMessages(method, "request", pending.requests, pending.requestBytes);
          if (pending.responses > 0) countMessages(method, "response", pending.responses, pending.responseBytes);
        }
        return;
      }
      case "callMessage": {
        const id = idOf(e.callId);
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
        const id = idOf(e.callId);
        early.delete(id);
        const call = calls.get(id);
        if (!call) return;
        calls.delete(id);
        // Codes outside 0..16 share Unknown's labels (2), as their name does.
        const code = Number.isInteger(e.code) && e.code >= 0 && e.code <= 16 ? e.code : 2;
        const m = call.method;
        handled.inc((m.handled[code] ??= { ...m.labels, grpc_code: grpcCodeName(code) }));
        const ms = call.startMs !== undefined && e.time ? e.time.getTime() - call.startMs : performance.now() - call.startPerf;
        handling.observe(call.method.labels, Math.max(0, ms) / 1000);
        const inst = call.instance;
        // Only while that same registration is current: a deregistered instance has no series.
        if (inst && instances.get(instanceKey(inst.service, inst.id)) === inst) {
          inst.inFlight = Math.max(0, inst.inFlight - 1);
          let labels = inst.codes?.get(code);
          if (!labels) (inst.codes ??= new Map()).set(code, (labels = { service: inst.service, instance: inst.id, grpc_code: grpcCodeName(code) }));
          instanceCalls.inc(labels);
        }
        return;
      }
      case "callHeaders":
        return;
    }
  }

  // Instances registered before the metrics were created (their calls in flight are not known).
  for (const i of hub.snapshot({}).instances) {
    instances.set(instanceKey(i.service, i.id), { service: i.service, id: i.id, health: healthOf(i.health, "serving"), inFlight: 0, codes: undefined });
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
