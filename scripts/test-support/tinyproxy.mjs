// A real HTTP CONNECT proxy on loopback for the proxy tests of every workspace: Debian's
// tinyproxy in the foreground on a free port of 127.0.0.1, optionally demanding basic
// credentials. Plain JavaScript with a .d.mts beside it, so tests of any workspace import it.
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { createServer } from "node:net";
import path from "node:path";
import { freePort } from "./free-port.mjs";

/** True once something listens on 127.0.0.1:`port` (tinyproxy logs nothing reliable at startup). */
function taken(port) {
  return new Promise((resolve) => {
    const probe = createServer().listen(port, "127.0.0.1");
    probe.once("listening", () => probe.close(() => resolve(false)));
    probe.once("error", () => resolve(true));
  });
}

/**
 * @param {string} dir where the configuration goes
 * @param {{ user: string; password: string }} [auth]
 */
export async function startTinyproxy(dir, auth) {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const conf = path.join(dir, `tinyproxy-${port}.conf`);
    writeFileSync(
      conf,
      [
        `Port ${port}`,
        "Listen 127.0.0.1",
        "Timeout 600",
        "MaxClients 200",
        "Allow 127.0.0.1",
        "LogLevel Info",
        ...(auth ? [`BasicAuth ${auth.user} ${auth.password}`] : []),
      ].join("\n") + "\n",
    );
    let out = "";
    const child = spawn("tinyproxy", ["-d", "-c", conf], { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout.on("data", (d) => (out += d.toString()));
    child.stderr.on("data", (d) => (out += d.toString()));
    let exited = false;
    child.once("exit", () => (exited = true));
    const deadline = Date.now() + 20_000;
    let ready = false;
    while (!exited && !ready && Date.now() < deadline) {
      ready = await taken(port);
      if (!ready) await new Promise((r) => setTimeout(r, 50));
    }
    if (ready && !exited) {
      return {
        url: `http://${auth ? `${auth.user}:${auth.password}@` : ""}127.0.0.1:${port}`,
        port,
        log: () => out,
        stop: () =>
          new Promise((resolve) => {
            if (exited) return resolve();
            child.once("exit", () => resolve());
            child.kill("SIGTERM");
          }),
      };
    }
    child.kill("SIGKILL");
    if (attempt >= 3) throw new Error(`tinyproxy did not start: ${out}`);
  }
}
