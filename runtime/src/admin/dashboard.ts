// The router's web dashboard on node:http: the UI at `/` (the files of ./ui, embedded in
// ui-assets.ts so any bundle serves them), the live event stream at `/events` (Server-Sent
// Events, one admin Event as proto3 JSON per message, the snapshot first; with `batch=1` a
// JSON array of the Events queued at that moment per message),
// `/snapshot.json`, `/metrics` for Prometheus when given metrics (createRouterMetrics), and
// the operators' POST `/action` and `/replay` (the Admin service's Act and Replay, as JSON).
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { create, toJsonString } from "@bufbuild/protobuf";
import { ActionRequestSchema, EventSchema, SnapshotSchema, type Event } from "../gen/grpcrouter/v1/admin_pb.js";
import { ActionError, actionKindOf, adminCallerRefusal } from "./actions.js";
import { replayCall } from "./replay.js";
import { DASHBOARD_ASSETS } from "./ui-assets.js";
import { listenHttp } from "../http/listen.js";
import { expectedHosts, hostRefusal } from "./host-check.js";
import { serveMetrics } from "../metrics/server.js";
import { onDrainOrClose } from "../tunnel/drained.js";
import type { MetricsSource } from "../metrics/router-metrics.js";

export { dashboardWebviewHtml } from "./dashboard-assets.js";
import type { AdminHub } from "./hub.js";
import type { Watcher } from "./watcher.js";

export interface DashboardOptions {
  hub: AdminHub;
  /** Default 0: an ephemeral port (read it from the result's `url`/`port`). */
  port?: number;
  /** Default "127.0.0.1": the dashboard shows request metadata and bodies; keep it local. */
  host?: string;
  /** Per-tab event queue bound (default: the hub's). */
  queueLimit?: number;
  /** Seconds between SSE keep-alive comments. Default 15. */
  keepAliveSeconds?: number;
  /** Serve the UI from this folder instead of the embedded copy (UI development). */
  uiDir?: string;
  /** Serve these at `/metrics` (text exposition format), e.g. `createRouterMetrics({ hub })`. */
  metrics?: MetricsSource;
  /**
   * More names (host or host:port) the dashboard answers to, beyond 127.0.0.1, localhost,
   * [::1] and the address it is bound to: e.g. the name of a proxy in front of it. Requests
   * with any other Host (DNS rebinding) or a foreign Origin are refused (403).
   */
  allowedHosts?: readonly string[];
}

export interface Dashboard {
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * The folder holding the dashboard UI (index.html, app.js, …). The VS Code extension serves
 * these same files in its webview (see `dashboardWebviewHtml`). A bundle (the CLI's, the
 * extension's) finds them in `ui/` beside itself, where its build copies them.
 */
export function dashboardUiDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const beside = path.join(here, "ui");
  if (existsSync(path.join(beside, "index.html"))) return beside;
  // Running from dist/ (tsc does not copy non-TS files): use the sources' copy.
  const fromDist = here.replace(/([\\/])dist[\\/]src[\\/]admin$/, "$1src$1admin");
  return path.join(fromDist, "ui");
}

/** The CSP the dashboard page is served with: nothing inline, nothing from elsewhere (the codicon font is a data: URL in codicons.css). */
export const DASHBOARD_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; font-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
};

// JSON of an event is built once, however many tabs watch (events are shared, immutable).
const jsonCache = new WeakMap<Event, string>();
function eventJson(ev: Event): string {
  let json = jsonCache.get(ev);
  if (json === undefined) {
    json = toJsonString(EventSchema, ev);
    jsonCache.set(ev, json);
  }
  return json;
}

const OPERATOR_BODY_LIMIT = 8 * 1024 * 1024;
const HTTP_STATUS: Record<ActionError["code"], number> = {
  INVALID_ARGUMENT: 400,
  NOT_FOUND: 404,
  PERMISSION_DENIED: 403,
  FAILED_PRECONDITION: 409,
  UNAVAILABLE: 503,
};

function stringField(body: Record<string, unknown>, name: string): string {
  const v = body[name];
  if (v === undefined) return "";
  if (typeof v !== "string") throw new ActionError("INVALID_ARGUMENT", `${name}: expected a string, got ${JSON.stringify(v)}`);
  return v;
}

/** A JSON object body of at most `limit` bytes. */
function readJson(req: IncomingMessage, limit: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new Error(`the body is larger than ${limit} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("error", reject);
    req.on("end", () => {
      try {
        const v: unknown = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("expected a JSON object");
        resolve(v as Record<string, unknown>);
      } catch (e) {
        reject(new Error(`the body is not JSON: ${(e as Error).message}`));
      }
    });
  });
}

export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const { hub } = options;
  const host = options.host ?? "127.0.0.1";
  // Static files are loaded once: the set is small, and it keeps request paths out of the fs.
  const files = new Map<string, { body: Buffer; type: string }>();
  const sources: Array<[string, Buffer]> = options.uiDir
    ? readdirSync(options.uiDir).map((name) => [name, readFileSync(path.join(options.uiDir!, name))])
    : Object.entries(DASHBOARD_ASSETS).map(([name, text]) => [name, Buffer.from(text, "utf8")]);
  for (const [name, body] of sources) {
    const type = CONTENT_TYPES[path.extname(name)];
    if (type) files.set(`/${name}`, { body, type });
  }
  const watchers = new Set<Watcher>();
  const keepAliveMs = (options.keepAliveSeconds ?? 15) * 1000;

  const server = createServer((req, res) => {
    try {
      route(req, res);
    } catch (e) {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
      res.end(`dashboard error: ${e instanceof Error ? e.message : String(e)}`);
    }
  });

  let allowed: ReadonlySet<string> = new Set();
  function route(req: IncomingMessage, res: ServerResponse): void {
    // DNS rebinding: exact Host and Origin checks (host-check.ts).
    const refusal = hostRefusal(req.headers, allowed);
    if (refusal) {
      res.writeHead(403, { "content-type": "text/plain" }).end(`forbidden: ${refusal}\n`);
      return;
    }
    const url = new URL(req.url ?? "/", "http://dashboard.local");
    if (url.pathname === "/action" || url.pathname === "/replay") {
      if (req.method !== "POST") {
        res.writeHead(405, { allow: "POST" }).end();
        return;
      }
      void serveOperator(url.pathname, req, res);
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    if (url.pathname === "/events") return serveEvents(url, req, res);
    if (url.pathname === "/metrics" && options.metrics) return serveMetrics(options.metrics, req, res);
    if (url.pathname === "/snapshot.json") {
      const snap = hub.snapshot({ includeBodies: true });
      res.writeHead(200, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" });
      res.end(toJsonString(SnapshotSchema, snap));
      return;
    }
    const file = files.get(url.pathname === "/" ? "/index.html" : url.pathname);
    if (!file) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    res.writeHead(200, {
      "content-type": file.type,
      "cache-control": "no-cache",
      "content-security-policy": DASHBOARD_CSP,
      "x-content-type-options": "nosniff",
    });
    res.end(req.method === "HEAD" ? undefined : file.body);
  }

  /**
   * POST /action and /replay: operators' actions from the page (JSON in, JSON out). The Host
   * and Origin checks above keep other sites out; a JSON content type cannot be sent across
   * origins without a CORS preflight, which is never answered; and the caller must be on this
   * machine, as for the Admin service without mTLS.
   */
  async function serveOperator(path: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const reply = (status: number, body: object) => {
      if (res.headersSent) return;
      res.writeHead(status, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" }).end(JSON.stringify(body));
    };
    const peer = req.socket.remoteAddress ?? "";
    const refusal = adminCallerRefusal(peer, undefined);
    if (refusal !== undefined) return reply(403, { code: "PERMISSION_DENIED", error: refusal });
    if (!/^application\/json(;|$)/i.test(req.headers["content-type"] ?? ""))
      return reply(415, { code: "INVALID_ARGUMENT", error: "send the action as application/json" });
    let body: Record<string, unknown>;
    try {
      body = await readJson(req, OPERATOR_BODY_LIMIT);
    } catch (e) {
      return reply(400, { code: "INVALID_ARGUMENT", error: (e as Error).message });
    }
    const actor = `dashboard (${peer})`;
    try {
      if (path === "/action") {
        const kind = actionKindOf(body.kind);
        if (kind === undefined)
          throw new ActionError(
            "INVALID_ARGUMENT",
            `kind: expected drain, undrain, eject, restore, setWeight, pause or resume, got ${JSON.stringify(body.kind)}`,
          );
        const request = create(ActionRequestSchema, {
          kind,
          service: stringField(body, "service"),
          instanceId: stringField(body, "instanceId"),
          weight: typeof body.weight === "number" ? body.weight : 0,
          note: stringField(body, "note"),
        });
        return reply(200, { summary: hub.actions.act(request, actor) });
      }
      const callId = typeof body.callId === "string" && /^\d{1,20}$/.test(body.callId) ? BigInt(body.callId) : undefined;
      if (callId === undefined) throw new ActionError("INVALID_ARGUMENT", `callId: expected a call id as a decimal string, got ${JSON.stringify(body.callId)}`);
      const requestsJson = body.requestsJson ?? [];
      if (!Array.isArray(requestsJson) || !requestsJson.every((r) => typeof r === "string"))
        throw new ActionError("INVALID_ARGUMENT", "requestsJson: expected an array of JSON texts");
      const r = await replayCall(hub, { callId, requestsJson }, actor);
      return reply(200, { callId: String(r.callId), code: r.code, message: r.message, responsesJson: r.responsesJson });
    } catch (e) {
      if (e instanceof ActionError) return reply(HTTP_STATUS[e.code], { code: e.code, error: e.message });
      return reply(500, { code: "INTERNAL", error: (e as Error)?.message ?? String(e) });
    }
  }

  function serveEvents(url: URL, req: IncomingMessage, res: ServerResponse): void {
    const flag = (name: string, dflt: boolean) => {
      const v = url.searchParams.get(name);
      return v === null ? dflt : v !== "0" && v !== "false";
    };
    // A browser dispatches each SSE message as a task of its own: at thousands of calls a
    // second, one message per event costs a page more than drawing does. Batched, a message
    // carries what was queued (at most ~64 KiB), so a burst is a few messages.
    const batch = flag("batch", false);
    const watcher = hub.watch({
      includeMessages: flag("messages", true),
      includeBodies: flag("bodies", true),
      services: url.searchParams.getAll("service"),
      queueLimit: options.queueLimit,
    });
    watchers.add(watcher);
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    });
    res.write("retry: 1000\n\n");
    const keepAlive = setInterval(() => res.write(": keep-alive\n\n"), keepAliveMs);
    keepAlive.unref();
    const stop = () => {
      clearInterval(keepAlive);
      watcher.close();
      watchers.delete(watcher);
    };
    req.on("close", stop);
    res.on("close", stop);
    res.on("error", stop);
    void (async () => {
      while (!watcher.closed) {
        // What is queued goes out in few writes (far fewer syscalls under a burst), but in
        // pieces of at most 64 KiB: the browser dispatches a piece's events in one task, and a
        // task must stay short for the page to keep drawing at thousands of calls a second.
        let chunk = "";
        for (let ev = watcher.take(); ev; ev = chunk.length < 1 << 16 ? watcher.take() : undefined) {
          if (!batch) chunk += `data: ${eventJson(ev)}\n\n`;
          else chunk += (chunk ? "," : "data: [") + eventJson(ev);
        }
        if (batch && chunk) chunk += "]\n\n";
        if (chunk && !res.write(chunk)) await new Promise<void>((resolve) => onDrainOrClose(res, resolve));
        if (!chunk) await watcher.waitForEvents();
        else await new Promise<void>((resolve) => setImmediate(resolve));
      }
      if (!res.writableEnded) res.end();
    })();
  }

  const { port, origin } = await listenHttp(server, options.port ?? 0, host);
  allowed = expectedHosts(port, host, options.allowedHosts);
  return {
    url: `${origin}/`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const w of [...watchers]) w.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
