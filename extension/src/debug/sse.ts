// A Server-Sent Events reader for the router's admin stream (`GET /events` of the router's
// dashboard, see runtime/src/admin/dashboard.ts): every message is one admin Event in proto3
// JSON, and every connection starts with a snapshot, so reconnecting is resyncing. Plain
// node:http, so the extension host needs no gRPC stack to watch a router.
import http from "node:http";

export interface AdminEvent {
  time?: string;
  snapshot?: {
    routerAddress?: string;
    services?: { name: string; methods?: string[] }[];
    instances?: AdminInstance[];
    [k: string]: unknown;
  };
  instanceRegistered?: AdminInstance;
  instanceChanged?: AdminInstance;
  instanceDeregistered?: AdminInstance;
  dropped?: string;
  [k: string]: unknown;
}

export interface AdminInstance {
  id: string;
  service: string;
  labels?: Record<string, string>;
  address?: string;
  streams?: number;
  inFlightCalls?: number;
  maxConcurrentCalls?: number;
  health?: string;
}

export type StreamState = "connecting" | "live" | "down";

export interface EventStreamOptions {
  /** The dashboard's base URL, e.g. "http://127.0.0.1:9091/". */
  url: string;
  /** Ask for message events (with decoded bodies). The tree view does not need them. */
  messages: boolean;
  onEvent(ev: AdminEvent): void;
  onState?(state: StreamState, detail: string): void;
  /** Delay between reconnection attempts. Default 500 ms. */
  retryMs?: number;
}

/** Reads the stream until `close()`, reconnecting (and so resyncing) whenever it breaks. */
export class AdminEventStream {
  #req: http.ClientRequest | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(private readonly options: EventStreamOptions) {
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

  #connect(): void {
    if (this.#closed) return;
    const url = new URL(`events?messages=${this.options.messages ? 1 : 0}&bodies=${this.options.messages ? 1 : 0}`, this.options.url);
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
        for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block
            .split("\n")
            .filter((l) => l.startsWith("data:"))
            .map((l) => l.slice(5).replace(/^ /, ""))
            .join("\n");
          if (!data) continue;
          try {
            this.options.onEvent(JSON.parse(data) as AdminEvent);
          } catch {
            // Not JSON: not ours to show.
          }
        }
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
