// A bare HTTP endpoint for Prometheus to scrape: GET /metrics and nothing else. The dashboard
// serves /metrics too, but only on loopback (it shows request bodies); this one can listen
// wherever the scraper is, because metrics carry no payloads or metadata.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { listenHttp } from "../http/listen.js";
import type { MetricsSource } from "./router-metrics.js";

export interface MetricsServerOptions {
  metrics: MetricsSource;
  /** Default 0: an ephemeral port. */
  port?: number;
  /** Default "127.0.0.1"; "0.0.0.0" to be scraped from other hosts. */
  host?: string;
}

export interface MetricsServer {
  /** http://host:port/metrics */
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Answers one request for the metrics: the text exposition format, or an error status. */
export function serveMetrics(metrics: MetricsSource, req: IncomingMessage, res: ServerResponse): void {
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { allow: "GET, HEAD" }).end();
    return;
  }
  metrics.metrics().then(
    (text) => {
      res.writeHead(200, { "content-type": metrics.contentType, "cache-control": "no-store" });
      res.end(req.method === "HEAD" ? undefined : text);
    },
    (e: unknown) => {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
      res.end(`metrics error: ${e instanceof Error ? e.message : String(e)}\n`);
    },
  );
}

export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const host = options.host ?? "127.0.0.1";
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://metrics.local").pathname;
    if (path !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: the metrics are at /metrics\n");
      return;
    }
    serveMetrics(options.metrics, req, res);
  });
  const { port, origin } = await listenHttp(server, options.port ?? 0, host);
  return {
    url: `${origin}/metrics`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
