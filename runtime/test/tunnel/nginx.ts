// A real nginx (Debian's, started by the test on a free loopback port) as the HTTP/1.1-only
// reverse proxy users put in front of services: proxy_pass with proxy_http_version 1.1 and
// the Upgrade/Connection headers passed on, so WebSocket gets through and HTTP/2 does not
// (its preface is answered 400 Bad Request).
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import path from "node:path";
import { freePort } from "../../../scripts/test-support/free-port.mjs";

export interface Nginx {
  port: number;
  /** nginx's access log so far (one line per request: method, path, status). */
  accessLog(): string;
  stop(): Promise<void>;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(port, "127.0.0.1");
    c.once("connect", () => {
      c.destroy();
      resolve(true);
    });
    c.once("error", () => resolve(false));
  });
}

/**
 * nginx proxying HTTP/1.1 (and WebSocket Upgrades) to 127.0.0.1:`upstreamPort`. With `tls`,
 * it terminates TLS towards clients (HTTP/1.1 only: ALPN h2 is refused) and speaks TLS to the
 * upstream too.
 */
export async function startHttp1Proxy(dir: string, upstreamPort: number, name = "nginx", tls?: { cert: string; key: string }): Promise<Nginx> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const base = path.join(dir, `${name}-${port}`);
    const conf = `${base}.conf`;
    writeFileSync(
      conf,
      `daemon off;
worker_processes 1;
pid ${base}.pid;
error_log ${base}-error.log info;
events { worker_connections 1024; }
http {
  access_log ${base}-access.log;
  client_body_temp_path ${base}-body;
  proxy_temp_path ${base}-proxy;
  fastcgi_temp_path ${base}-fastcgi;
  uwsgi_temp_path ${base}-uwsgi;
  scgi_temp_path ${base}-scgi;
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  server {
    listen 127.0.0.1:${port}${
      tls
        ? ` ssl;
    ssl_certificate ${tls.cert};
    ssl_certificate_key ${tls.key}`
        : ""
    };
    location / {
      proxy_pass ${tls ? "https" : "http"}://127.0.0.1:${upstreamPort};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
      proxy_buffering off;
    }
  }
}
`,
    );
    let out = "";
    const child: ChildProcess = spawn("nginx", ["-p", dir, "-e", `${base}-error.log`, "-c", conf], { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    let exited = false;
    child.once("exit", () => (exited = true));
    const deadline = Date.now() + 20_000;
    while (!exited && Date.now() < deadline && !(await accepts(port))) await new Promise((r) => setTimeout(r, 50));
    if (!exited && (await accepts(port))) {
      const log = `${base}-access.log`;
      return {
        port,
        accessLog: () => (existsSync(log) ? readFileSync(log, "utf8") : ""),
        stop: () =>
          new Promise<void>((resolve) => {
            if (exited) return resolve();
            child.once("exit", () => resolve());
            // SIGTERM: nginx's fast shutdown, which closes open connections (QUIT would wait for them).
            child.kill("SIGTERM");
            setTimeout(() => child.kill("SIGKILL"), 5000).unref();
          }),
      };
    }
    child.kill("SIGKILL");
    const errors = existsSync(`${base}-error.log`) ? readFileSync(`${base}-error.log`, "utf8") : "";
    if (attempt >= 3) throw new Error(`nginx did not start: ${out}\n${errors}`);
  }
}
