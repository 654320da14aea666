// The C proxies the router is measured against, configured as an operator would for gRPC:
// HTTP/2 cleartext on both sides, one thread/worker (the router is one Node thread), upstream
// connections kept alive and reused, no logging. Configs go into a temporary folder.
import { writeFileSync } from "node:fs";
import path from "node:path";
import { freePort, startProcess, waitForPort, type Started } from "./processes.js";

export interface Proxy extends Started {
  port: number;
}

export async function startHaproxy(dir: string, upstreamPort: number): Promise<Proxy> {
  const port = await freePort();
  const cfg = path.join(dir, "haproxy.cfg");
  writeFileSync(
    cfg,
    `global
  nbthread 1
  maxconn 4096

defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s

frontend grpc_in
  bind 127.0.0.1:${port} proto h2
  default_backend grpc_direct

backend grpc_direct
  server direct 127.0.0.1:${upstreamPort} proto h2
`,
  );
  // -db: stay in the foreground (no daemon), so the bench owns the process.
  const s = startProcess("haproxy", ["-db", "-f", cfg], { stdio: ["ignore", "ignore", "pipe"] });
  await waitForPort(port, s, "haproxy");
  return { ...s, port };
}

export async function startNginx(dir: string, upstreamPort: number): Promise<Proxy> {
  const port = await freePort();
  const cfg = path.join(dir, "nginx.conf");
  writeFileSync(
    cfg,
    `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/nginx-body;
  proxy_temp_path ${dir}/nginx-proxy;
  fastcgi_temp_path ${dir}/nginx-fastcgi;
  uwsgi_temp_path ${dir}/nginx-uwsgi;
  scgi_temp_path ${dir}/nginx-scgi;
  # HTTP/2 connections are closed after keepalive_requests calls (1000 by default): h2load
  # does not reconnect, and no gRPC client wants that either.
  keepalive_requests 100000000;
  upstream grpc_direct {
    server 127.0.0.1:${upstreamPort};
    keepalive 64;
    keepalive_requests 100000000;
  }
  server {
    listen 127.0.0.1:${port} http2;
    location / {
      grpc_pass grpc://grpc_direct;
    }
  }
}
`,
  );
  // -e: the startup error log too goes to the temporary folder, not /var/log/nginx.
  const s = startProcess("nginx", ["-p", dir, "-e", `${dir}/nginx-error.log`, "-c", cfg], { stdio: ["ignore", "ignore", "pipe"] });
  await waitForPort(port, s, "nginx");
  return { ...s, port };
}

/**
 * tinyproxy as the HTTP CONNECT proxy on a bridge's way to its router (issue 16): it relays
 * the Register stream's TCP connection once the CONNECT is answered. Logging kept low.
 */
export async function startTinyproxy(dir: string): Promise<Proxy> {
  const port = await freePort();
  const cfg = path.join(dir, "tinyproxy.conf");
  writeFileSync(cfg, [`Port ${port}`, "Listen 127.0.0.1", "Timeout 600", "MaxClients 100", "Allow 127.0.0.1", "LogLevel Warning"].join("\n") + "\n");
  // -d: stay in the foreground, so the bench owns the process.
  const s = startProcess("tinyproxy", ["-d", "-c", cfg], { stdio: ["ignore", "ignore", "pipe"] });
  await waitForPort(port, s, "tinyproxy");
  return { ...s, port };
}
