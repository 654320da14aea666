// A real DNS server on loopback for discovery tests: Debian's dnsmasq answering from a hosts
// file the test rewrites (SIGHUP re-reads it), on a free UDP/TCP port of 127.0.0.1.
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";

export interface Dnsmasq {
  /** "127.0.0.1:port", for `dns://127.0.0.1:port/name:port` targets or Resolver.setServers. */
  server: string;
  /** Replaces the answers: name → addresses. */
  set(records: Record<string, string[]>): Promise<void>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

export async function startDnsmasq(records: Record<string, string[]>): Promise<Dnsmasq> {
  const dir = mkdtempSync(path.join(tmpdir(), "grpcrouter-dns-"));
  chmodSync(dir, 0o755); // dnsmasq drops root and re-reads the file as nobody
  const hosts = path.join(dir, "hosts");
  const write = (r: Record<string, string[]>) => {
    writeFileSync(hosts, Object.entries(r).flatMap(([name, ips]) => ips.map((ip) => `${ip} ${name}\n`)).join(""), { mode: 0o644 });
  };
  write(records);
  const port = await freePort();
  let log = "";
  const child: ChildProcess = spawn(
    "dnsmasq",
    ["-k", `--port=${port}`, "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts", `--addn-hosts=${hosts}`, "--conf-file=/dev/null", "--pid-file=", "--log-facility=-"],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  // Wait until it has read the file; every later read is announced the same way.
  let reads = 0;
  let onRead: (() => void) | undefined;
  const watch = (b: Buffer) => {
    log += b.toString();
    const n = (log.match(/read .*hosts - \d+ names?/g) ?? []).length;
    if (n > reads) {
      reads = n;
      onRead?.();
    }
  };
  child.stdout!.on("data", watch);
  child.stderr!.on("data", watch);
  const nextRead = (timeoutMs = 20_000) =>
    new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`dnsmasq did not read its hosts file: ${log}`)), timeoutMs);
      const target = reads + 1;
      onRead = () => {
        if (reads >= target) {
          clearTimeout(t);
          onRead = undefined;
          resolve();
        }
      };
    });
  const first = nextRead();
  child.once("exit", (code) => log += `\nexited ${code}`);
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
      if (child.exitCode === null) {
        const gone = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await gone;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
