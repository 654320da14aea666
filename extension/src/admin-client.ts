// The extension's one client of a router's Admin state. It reads the event stream of the
// router's dashboard (`GET /events`, runtime/src/admin/dashboard.ts: Server-Sent Events, one
// grpcrouter.v1.Event in proto3 JSON each, every connection starting with a snapshot) and
// decodes the events into the generated Admin types of @grpcrouter/runtime (admin_pb.ts,
// protobuf-es). No polling and no gRPC stack in the extension host: a change in the router
// arrives as an event, and a reconnect is a resync. RouterState keeps what the Router view,
// the status bar and the code lenses show. No vscode import: tests drive it in plain node.
import http from "node:http";
import { fromJson, type JsonObject } from "@bufbuild/protobuf";
import { EventSchema, Instance_Health, Instance_HealthSchema, Instance_Transport, type Event, type Instance } from "@grpcrouter/runtime/admin-types";

export { Instance_Health, Instance_Transport, type Event, type Instance };

/** The kinds of admin Event (the `event` oneof's cases). */
export type EventKind = NonNullable<Event["event"]["case"]>;
export type StreamState = "connecting" | "live" | "down";

export interface AdminStreamOptions {
  /** The dashboard's base URL, e.g. "http://127.0.0.1:9091/". */
  url: string;
  /** Ask for message events (with decoded bodies). The Router view does not need them. */
  messages: boolean;
  /** Every event as the router sent it (proto3 JSON). */
  onJson?(json: JsonObject): void;
  /**
   * The same events, as many as arrived together (the router batches what it has queued):
   * the debug panel hands each batch to its page in one message, which under load costs the
   * page far less than a message per event.
   */
  onJsonBatch?(json: JsonObject[]): void;
  /** Events decoded into the generated Event type, of `kinds` only (decoding has a cost). */
  onEvent?(event: Event): void;
  /** Which events `onEvent` gets. Default: all. */
  kinds?: readonly EventKind[];
  onState?(state: StreamState, detail: string): void;
  /** Delay between reconnection attempts. Default 500 ms. */
  retryMs?: number;
}

/** The instances kinds and the snapshot: all RouterState needs. */
export const ROUTER_STATE_KINDS: readonly EventKind[] = ["snapshot", "instanceRegistered", "instanceChanged", "instanceDeregistered"];

/** Reads the stream until `close()`, reconnecting (and so resyncing) whenever it breaks. */
export class AdminEventStream {
  #req: http.ClientRequest | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #kinds: ReadonlySet<string> | undefined;

  constructor(private readonly options: AdminStreamOptions) {
    this.#kinds = options.kinds ? new Set(options.kinds) : undefined;
    this.#connect();
  }

  /** Drops the current connection and opens a new one (a fresh snapshot first). */
  resync(): void {
    if (this.#closed) return;
    this.#req?.destroy();
    this.#req = undefined;
    clearTimeout(this.#timer);
    this.#connect();
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#req?.destroy();
    this.#req = undefined;
  }

  #retry(detail: string): void {
    if (this.#closed) return;
    this.options.onState?.("connecting", detail);
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#connect(), this.options.retryMs ?? 500);
  }

  #deliver(data: string): void {
    let json: unknown;
    try {
      json = JSON.parse(data);
    } catch {
      return; // not JSON: not ours to show
    }
    // `batch=1`: an array of events; a router without batching sends one event.
    const events = (Array.isArray(json) ? json : [json]).filter((e): e is JsonObject => !!e && typeof e === "object" && !Array.isArray(e));
    if (events.length === 0) return;
    this.options.onJsonBatch?.(events);
    for (const obj of events) this.#one(obj);
  }

  #one(obj: JsonObject): void {
    this.options.onJson?.(obj);
    if (!this.options.onEvent) return;
    // proto3 JSON names the oneof's case as a key beside `time`.
    if (this.#kinds && !Object.keys(obj).some((k) => this.#kinds!.has(k))) return;
    let event: Event;
    try {
      // A newer router may send fields this extension does not know yet.
      event = fromJson(EventSchema, obj, { ignoreUnknownFields: true });
    } catch {
      return;
    }
    this.options.onEvent(event);
  }

  #connect(): void {
    if (this.#closed) return;
    const flag = this.options.messages ? 1 : 0;
    const url = new URL(`events?messages=${flag}&bodies=${flag}&batch=1`, this.options.url);
    this.options.onState?.("connecting", `connecting to ${this.options.url}`);
    const req = http.get(url, { headers: { accept: "text/event-stream" } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return this.#retry(`the router answered HTTP ${res.statusCode}`);
      }
      this.options.onState?.("live", "live");
      res.setEncoding("utf8");
      let buffer = "";
      res.on("data", (chunk: string) => {
        buffer += chunk;
        let start = 0;
        for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n", start)) {
          const block = buffer.slice(start, end);
          start = end + 2;
          let data = "";
          for (const line of block.split("\n")) {
            if (!line.startsWith("data:")) continue; // comments (keep-alive), retry:, event:
            data += (data ? "\n" : "") + line.slice(line.startsWith("data: ") ? 6 : 5);
          }
          if (data) this.#deliver(data);
        }
        buffer = buffer.slice(start);
      });
      res.on("end", () => {
        if (this.#req === req) this.#retry("the router closed the event stream");
      });
      res.on("error", () => {
        if (this.#req === req) this.#retry("the event stream broke");
      });
    });
    req.on("error", (e) => {
      if (this.#req === req) this.#retry(e.message);
    });
    this.#req = req;
  }
}

/** Service (fully-qualified) → registered instances; every routed service appears, with 0 too. */
export type InstanceCounts = Record<string, number>;

export interface ServiceNode {
  name: string;
  methods: string[];
  instances: Instance[];
}

/** A router's services and instances, kept from its admin events. */
export class RouterState {
  #services = new Map<string, string[]>();
  #instances = new Map<string, Instance>();
  routerAddress = "";
  /** Whether a snapshot arrived (before it, counts are unknown rather than zero). */
  known = false;
  readonly #listeners = new Set<() => void>();

  onChange(listener: () => void): { dispose(): void } {
    this.#listeners.add(listener);
    return { dispose: () => this.#listeners.delete(listener) };
  }

  /** Applies one admin Event; returns whether the state changed. */
  apply(ev: Event): boolean {
    const e = ev.event;
    switch (e.case) {
      case "snapshot":
        this.known = true;
        this.routerAddress = e.value.routerAddress;
        this.#services = new Map(e.value.services.map((s) => [s.name, s.methods]));
        this.#instances = new Map(e.value.instances.map((i) => [key(i), i]));
        break;
      case "instanceRegistered":
      case "instanceChanged":
        this.#instances.set(key(e.value), e.value);
        break;
      case "instanceDeregistered":
        this.#instances.delete(key(e.value));
        break;
      default:
        return false;
    }
    for (const l of this.#listeners) l();
    return true;
  }

  /** Forgets everything (the router stopped). */
  reset(): void {
    this.#services.clear();
    this.#instances.clear();
    this.routerAddress = "";
    this.known = false;
    for (const l of this.#listeners) l();
  }

  services(): ServiceNode[] {
    const names = new Set(this.#services.keys());
    for (const i of this.#instances.values()) names.add(i.service);
    return [...names].sort().map((name) => ({
      name,
      methods: this.#services.get(name) ?? [],
      instances: [...this.#instances.values()].filter((i) => i.service === name).sort((a, b) => a.id.localeCompare(b.id)),
    }));
  }

  /** Instances per service (undefined until the first snapshot). */
  counts(): InstanceCounts | undefined {
    if (!this.known) return undefined;
    return Object.fromEntries(this.services().map((s) => [s.name, s.instances.length]));
  }
}

const key = (i: Instance) => `${i.service}\u0000${i.id}`;

/** Watches the router whose dashboard is at `url`: its state, live, until `close()`. */
export function watchRouterState(url: string, onState?: (state: StreamState, detail: string) => void): { state: RouterState; close(): void } {
  const state = new RouterState();
  const stream = new AdminEventStream({ url, messages: false, kinds: ROUTER_STATE_KINDS, onEvent: (ev) => state.apply(ev), ...(onState ? { onState } : {}) });
  return { state, close: () => stream.close() };
}

/** "serving" for Instance_Health.SERVING; unspecified counts as serving (an older router). */
export function healthText(health: Instance_Health): string {
  if (health === Instance_Health.UNSPECIFIED) return "serving";
  const name = Instance_HealthSchema.value[health]?.name ?? "HEALTH_UNKNOWN";
  return name
    .replace(/^HEALTH_/, "")
    .toLowerCase()
    .replace(/_/g, " ");
}

/**
 * How an instance's Register stream reached the router, in the dashboard's words (its
 * connection cell, runtime/src/admin/ui/app.js): protocol with TLS or mTLS (certificate names
 * in the principal) and the credentials the instance showed; in words for a tooltip.
 */
const TRANSPORT: Partial<Record<Instance_Transport, { protocol: string; tls: boolean; words: string }>> = {
  [Instance_Transport.HTTP2]: { protocol: "HTTP/2", tls: false, words: "HTTP/2 without TLS (h2c)" },
  [Instance_Transport.HTTP2_TLS]: { protocol: "HTTP/2", tls: true, words: "HTTP/2 over TLS (h2)" },
  [Instance_Transport.WEBSOCKET]: { protocol: "WebSocket", tls: false, words: "the WebSocket fallback, without TLS (ws)" },
  [Instance_Transport.WEBSOCKET_TLS]: { protocol: "WebSocket", tls: true, words: "the WebSocket fallback, over TLS (wss)" },
};

export interface ConnectionText {
  /** Short, for a tree item's description: "HTTP/2 mTLS", "WebSocket with credentials"; "" when not reported. */
  label: string;
  /** Lines for a tooltip: the transport in words, the principal, the address. */
  details: string[];
}

export function connectionText(i: Pick<Instance, "transport" | "principal" | "address">): ConnectionText {
  const t = TRANSPORT[i.transport];
  const principal = i.principal;
  const mtls = principal.startsWith("certificate ");
  const credentials = principal.includes("credentials ");
  const label = t ? `${t.protocol}${t.tls ? (mtls ? " mTLS" : " TLS") : ""}${credentials ? " with credentials" : ""}` : "";
  const details = [
    t ? `Register stream over ${t.words}` : "transport not reported",
    principal === "anonymous" ? "principal: anonymous (no client certificate, no credentials)" : principal ? `principal: ${principal}` : "",
    i.address ? `from ${i.address}` : "",
  ].filter(Boolean);
  return { label, details };
}
