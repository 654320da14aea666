// ADAPTER: how "gRPC Router: Start Router" runs a local router. It launches the grpcrouter
// CLI's `serve` command on the module (`grpcrouter serve --root DIR --port N`: a router for
// every service, from descriptors, no build step) as a child process and reports its state.
// The CLI is bundled into the VSIX next to the server; everything about the CLI's command
// line lives in this one file. It imports nothing of VS Code, so tests drive it in plain node.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import net from "node:net";

export type RouterStatus =
  | { state: "stopped"; reason?: string }
  | { state: "starting"; port: number }
  | { state: "running"; port: number; address: string; pid: number; adminUrl?: string }
  | { state: "failed"; reason: string };

export interface RouterLaunch {
  /** Absolute path of the bundled CLI (dist/grpcrouter.js). */
  cli: string;
  /** The proto module to serve (the folder of buf.yaml or the workspace folder). */
  root: string;
  /** Its output folder: the router protos there fix the frame numbers bridges were generated with. */
  out?: string;
  port: number;
  /** The dashboard's port; 0 or absent: any free one (serve prints its URL). */
  adminPort?: number;
  cwd: string;
  log: (line: string) => void;
  /** Extra environment, e.g. GRPCROUTER_BUF for the bundled buf. */
  env?: Record<string, string>;
  /** How long the router may take to listen. Default 30 s. */
  readyTimeoutMs?: number;
}

/** Lines of the router's output kept to explain a failure. */
const TAIL_LINES = 20;
/** What `grpcrouter serve` prints once its dashboard listens (cli/src/commands/serve.ts). */
const DASHBOARD_LINE = /^grpcrouter: dashboard at (http:\/\/\S+)/;

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
    // Port 0 means "any": we pick a free one so that we know where the router listens.
    const port = launch.port > 0 ? launch.port : await freePort();
    this.set({ state: "starting", port });
    // VS Code's extension host runs on Electron: ELECTRON_RUN_AS_NODE makes its binary a
    // plain node, the same one the language server runs on.
    // The dashboard gets any free port (it prints its URL) unless the user chose one: a fixed
    // default would clash with a router the user runs by hand.
    const args = [
      launch.cli,
      "serve",
      "--root",
      launch.root,
      "--port",
      String(port),
      "--admin-port",
      String(launch.adminPort ?? 0),
      ...(launch.out ? ["--out", launch.out] : []),
    ];
    const child = spawn(process.execPath, args, {
      cwd: launch.cwd,
      env: { ...process.env, ...launch.env, ELECTRON_RUN_AS_NODE: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    const tail: string[] = [];
    // The dashboard's URL (its port is any free one): the extension watches the router's
    // state on its event stream.
    let adminUrl: string | undefined;
    let sawDashboard: () => void = () => {};
    const dashboardSeen = new Promise<void>((resolve) => (sawDashboard = resolve));
    const onLine = (line: string) => {
      if (!line.trim()) return;
      const dash = DASHBOARD_LINE.exec(line.trim());
      if (dash) {
        adminUrl = dash[1];
        sawDashboard();
      }
      launch.log(`[router] ${line}`);
      tail.push(line);
      if (tail.length > TAIL_LINES) tail.shift();
    };
    // Output arrives in chunks that may end mid-line: lines are cut at newlines only.
    for (const out of [child.stdout, child.stderr]) {
      let carry = "";
      out?.on("data", (b: Buffer) => {
        const parts = (carry + b.toString("utf8")).split("\n");
        carry = parts.pop() ?? "";
        parts.forEach(onLine);
      });
      out?.on("end", () => onLine(carry));
    }
    const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
    child.once("exit", (code, signal) => {
      // After "close" all output is read, so the reason can quote it.
      void exited.then(() => {
        if (this.child !== child) return;
        this.child = undefined;
        this.set(code === 0 || signal === "SIGTERM" ? { state: "stopped" } : { state: "failed", reason: exitReason(code, signal, tail) });
      });
    });
    child.once("error", (e) => launch.log(`[router] ${e.message}`));
    // Ready when its port accepts connections; a router that dies first has failed.
    const timeoutMs = launch.readyTimeoutMs ?? 30_000;
    const started = Date.now();
    const ready = await Promise.race([waitForPort(port, timeoutMs, exited), exited.then(() => false)]);
    // The dashboard line follows the port at once; a CLI without a dashboard runs without it.
    if (ready) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([dashboardSeen, exited, new Promise((r) => (timer = setTimeout(r, Math.max(1000, timeoutMs - (Date.now() - started)))))]);
      clearTimeout(timer);
    }
    if (ready && this.child === child) {
      this.set({ state: "running", port, address: `127.0.0.1:${port}`, pid: child.pid ?? 0, ...(adminUrl ? { adminUrl } : {}) });
    } else if (this.child === child) {
      this.stop();
      this.set({ state: "failed", reason: `the router did not listen on port ${port} within ${Math.round(timeoutMs / 1000)} s; see the output` });
    } else {
      // It exited: the exit handler sets the state once the output is read.
      await exited;
      await new Promise((r) => setImmediate(r));
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

/** A loopback port free right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Why the router exited, in words a user can act on. */
export function exitReason(code: number | null, signal: NodeJS.Signals | null, tail: string[]): string {
  const text = tail.join("\n");
  // A CLI from before `serve` existed answers with its usage error.
  if (/unknown command "serve"/.test(text)) {
    return "this grpcrouter CLI has no `serve` command yet, so it cannot run a local router (update the extension)";
  }
  const last = tail.slice(-3).join(" | ");
  return `the router exited (${signal ?? `code ${code}`})${last ? `: ${last}` : ""}`;
}

async function waitForPort(port: number, timeoutMs: number, gone: Promise<void>): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void gone.then(() => (exited = true));
  while (Date.now() < deadline && !exited) {
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
