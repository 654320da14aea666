// ADAPTER: how "gRPC Router: Start Router" runs a local router. It launches the grpcrouter
// CLI's `serve` command on the module (a router for every service, from descriptors, no
// build step) as a child process and reports its state. The CLI is bundled into the VSIX
// next to the server; everything about the CLI's command line lives in this one file.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import net from "node:net";

export type RouterStatus =
  | { state: "stopped"; reason?: string }
  | { state: "starting"; port: number }
  | { state: "running"; port: number; address: string; pid: number }
  | { state: "failed"; reason: string };

export interface RouterLaunch {
  /** Absolute path of the bundled CLI (dist/grpcrouter.js). */
  cli: string;
  /** The proto module to serve (the folder of buf.yaml or the workspace folder). */
  root: string;
  port: number;
  cwd: string;
  log: (line: string) => void;
}

export class RouterProcess {
  private child: ChildProcess | undefined;
  private status: RouterStatus = { state: "stopped" };
  private readonly listeners = new Set<(s: RouterStatus) => void>();

  get current(): RouterStatus {
    return this.status;
  }

  onChange(listener: (s: RouterStatus) => void): { dispose(): void } {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  private set(s: RouterStatus) {
    this.status = s;
    for (const l of this.listeners) l(s);
  }

  async start(launch: RouterLaunch): Promise<RouterStatus> {
    if (this.child) return this.status;
    if (!existsSync(launch.cli)) {
      this.set({ state: "failed", reason: `the grpcrouter CLI is missing from the extension (${launch.cli})` });
      return this.status;
    }
    const port = launch.port > 0 ? launch.port : await freePort();
    this.set({ state: "starting", port });
    // VS Code's extension host runs on Electron: ELECTRON_RUN_AS_NODE makes its binary a
    // plain node, the same one the language server runs on.
    const child = spawn(process.execPath, [launch.cli, "serve", "--listen", `127.0.0.1:${port}`, launch.root], {
      cwd: launch.cwd,
      env: { ...process.env, ELECTRON_RUN_AS_NODE: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    const onData = (b: Buffer) => {
      for (const line of b.toString("utf8").split("\n")) if (line.trim()) launch.log(`[router] ${line}`);
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    child.once("exit", (code, signal) => {
      if (this.child !== child) return;
      this.child = undefined;
      this.set(code === 0 || signal === "SIGTERM" ? { state: "stopped" } : { state: "failed", reason: `the router exited (${signal ?? `code ${code}`}); see the output` });
    });
    child.once("error", (e) => launch.log(`[router] ${e.message}`));
    // Ready when its port accepts connections; a router that dies first has failed.
    const ready = await Promise.race([waitForPort(port, 30_000), exited.then(() => false)]);
    if (ready && this.child === child) {
      this.set({ state: "running", port, address: `127.0.0.1:${port}`, pid: child.pid ?? 0 });
    } else if (this.child === child) {
      this.stop();
      this.set({ state: "failed", reason: "the router did not start listening within 30 s; see the output" });
    }
    return this.status;
  }

  stop(): void {
    const child = this.child;
    this.child = undefined;
    if (child && child.exitCode === null) child.kill("SIGTERM");
    this.set({ state: "stopped" });
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const sock = net.connect(port, "127.0.0.1");
      sock.once("connect", () => {
        sock.destroy();
        resolve(true);
      });
      sock.once("error", () => resolve(false));
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}
