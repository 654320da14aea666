// A real DNS server on loopback for discovery tests of every workspace: Debian's dnsmasq
// answering from a hosts file the test rewrites (SIGHUP re-reads it), on a free port of
// 127.0.0.1. Plain JavaScript with a .d.mts beside it, so tests of any workspace import it.
import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort } from "./free-port.mjs";

/** @param {Record<string, string[]>} records name → addresses */
export async function startDnsmasq(records) {
  const dir = mkdtempSync(path.join(tmpdir(), "grpcrouter-dns-"));
  chmodSync(dir, 0o755); // dnsmasq drops root and re-reads the file as nobody
  const hosts = path.join(dir, "hosts");
  const write = (r) => {
    writeFileSync(
      hosts,
      Object.entries(r)
        .flatMap(([name, ips]) => ips.map((ip) => `${ip} ${name}\n`))
        .join(""),
      { mode: 0o644 },
    );
  };
  write(records);
  const port = await freePort();
  let log = "";
  const child = spawn(
    "dnsmasq",
    [
      "-k",
      `--port=${port}`,
      "--listen-address=127.0.0.1",
      "--bind-interfaces",
      "--no-resolv",
      "--no-hosts",
      `--addn-hosts=${hosts}`,
      "--conf-file=/dev/null",
      "--pid-file=",
      "--log-facility=-",
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  // dnsmasq announces every read of the hosts file: that is when new answers are served.
  let reads = 0;
  let onRead;
  const watch = (b) => {
    log += b.toString();
    const n = (log.match(/read .*hosts - \d+ names?/g) ?? []).length;
    if (n > reads) {
      reads = n;
      onRead?.();
    }
  };
  child.stdout.on("data", watch);
  child.stderr.on("data", watch);
  child.once("error", (e) => (log += `\n${e.message}`));
  const nextRead = (timeoutMs = 20_000) =>
    new Promise((resolve, reject) => {
      const target = reads + 1;
      const t = setTimeout(() => reject(new Error(`dnsmasq did not read its hosts file (is Debian's dnsmasq-base installed?): ${log}`)), timeoutMs);
      onRead = () => {
        if (reads >= target) {
          clearTimeout(t);
          onRead = undefined;
          resolve();
        }
      };
    });
  const first = nextRead();
  child.once("exit", (code) => (log += `\nexited ${code}`));
  await first;
  return {
    server: `127.0.0.1:${port}`,
    async set(r) {
      write(r);
      const read = nextRead();
      child.kill("SIGHUP");
      await read;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const gone = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await gone;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
