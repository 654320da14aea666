// The processes a benchmark starts, and the guarantee that it stops every one of them: each
// child leads its own process group (tsx and nginx start children of their own), and
// stopAll() signals each group by its id on the way out, also on Ctrl-C.
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import net from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
const serversFile = fileURLToPath(new URL("./dataplane-servers.mjs", import.meta.url));
/**
 * What the processes under test run: the compiled JavaScript (`dist`, what users install and
 * run; the default) or, with BENCH_RUNTIME=source, the TypeScript sources through tsx (whose
 * keepNames wrapper on every closure cost the router ≈ 20 % more CPU per call). tsx stays
 * loaded either way: the Echo example's generated code is TypeScript.
 */
export const fromSources = process.env.BENCH_RUNTIME === "source";
const cliMain = fileURLToPath(new URL(fromSources ? "../../cli/src/main.ts" : "../../cli/dist/src/main.js", import.meta.url));

let bundle: string | undefined;
/** Builds the CLI bundle once per run (from the sources as they are now) and returns its path. */
function cliBundle(): string {
  if (!bundle) {
    const r = spawnSync(process.execPath, [fileURLToPath(new URL("../../cli/scripts/build.mjs", import.meta.url))], { stdio: "inherit" });
    if (r.status !== 0) throw new Error("building the CLI bundle (cli/scripts/build.mjs) failed");
    bundle = fileURLToPath(new URL("../../cli/dist/grpcrouter.js", import.meta.url));
  }
  return bundle;
}

export interface Started {
  child: ChildProcess;
  pid: number;
  /** The child's output so far (stderr, and stdout lines not consumed), for error messages. */
  output(): string;
}

const running = new Set<ChildProcess>();

export function startProcess(cmd: string, args: string[], options: SpawnOptions = {}): Started {
  const child = spawn(cmd, args, { cwd: repoRoot, detached: true, stdio: ["pipe", "pipe", "pipe"], ...options });
  running.add(child);
  child.once("exit", () => running.delete(child));
  let out = "";
  child.stderr?.on("data", (d: Buffer) => {
    out = (out + d.toString()).slice(-8000);
  });
  child.once("error", (e) => {
    out += `\n${cmd}: ${e.message}`;
  });
  return { child, pid: child.pid ?? -1, output: () => out };
}

/** Node flags for the processes under test, e.g. BENCH_NODE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/p". */
export const nodeFlags = (extra: string[] = []): string[] => [...extra, ...(fromSources ? ["--conditions=@grpcrouter/source"] : []), "--import", "tsx"];

/** A running role of dataplane-servers.mjs: JSON lines out (its reports), lines in (commands). */
export interface Role extends Started {
  /** Its first line: {"port":…} or {"ready":true}. */
  ready: Record<string, unknown>;
  /** Its next JSON line; rejects if it exits first or stays silent for `timeoutMs`. */
  next(timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Calls answered by the instance behind this role so far (its "answered" command). */
  answered(): Promise<number>;
}

export async function startRole(role: string, args: string[] = [], extraNodeFlags: string[] = []): Promise<Role> {
  const s = startProcess(process.execPath, [...nodeFlags(extraNodeFlags), serversFile, role, ...args]);
  const what = `${role} ${args.join(" ")}`.trim();
  const queue: string[] = [];
  const waiters: Array<(line: string) => void> = [];
  createInterface({ input: s.child.stdout! }).on("line", (line) => {
    const w = waiters.shift();
    if (w) w(line);
    else queue.push(line);
  });
  const next = (timeoutMs = 60_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const parse = (line: string) => {
        try {
          resolve(JSON.parse(line) as Record<string, unknown>);
        } catch {
          reject(new Error(`${what}: expected a JSON line, got ${JSON.stringify(line)}\n${s.output()}`));
        }
      };
      const queued = queue.shift();
      if (queued !== undefined) return parse(queued);
      const onLine = (line: string) => {
        clearTimeout(timer);
        s.child.off("exit", onExit);
        parse(line);
      };
      const fail = (e: Error) => {
        clearTimeout(timer);
        s.child.off("exit", onExit);
        const i = waiters.indexOf(onLine);
        if (i >= 0) waiters.splice(i, 1);
        reject(e);
      };
      const onExit = (code: number | null) => fail(new Error(`${what} exited (${code}):\n${s.output()}`));
      const timer = setTimeout(() => fail(new Error(`${what}: no answer after ${timeoutMs / 1000} s\n${s.output()}`)), timeoutMs);
      if (s.child.exitCode !== null) return onExit(s.child.exitCode);
      s.child.once("exit", onExit);
      waiters.push(onLine);
    });
  const ready = await next();
  let asking = Promise.resolve();
  const answered = () => {
    // One command at a time: the answers come back in order on the same stdout.
    const p = asking.then(async () => {
      s.child.stdin!.write("answered\n");
      return Number((await next(10_000)).answered);
    });
    asking = p.then(
      () => {},
      () => {},
    );
    return p;
  };
  return { ...s, ready, next, answered };
}

export interface CliOptions {
  /** Node flags of the process, e.g. --cpu-prof. */
  nodeFlags?: string[];
  /**
   * This tree's bundle, as users run it (cli/dist/grpcrouter.js, built first with
   * cli/scripts/build.mjs), instead of its dist (or its sources with BENCH_RUNTIME=source).
   */
  bundled?: boolean;
  /** Another build's entry point instead, run as it is: a bundle, or a checkout's cli/dist/src/main.js. */
  script?: string;
  /** Its working directory (the repository's root by default), which relative paths in `args` resolve against. */
  cwd?: string;
}

/**
 * The CLI (`grpcrouter <args>`); resolves once stdout matches `ready`. Memory is measured on
 * the bundle: tsx keeps function names with a property per closure, which a router holding
 * 10,000 instances would pay for per instance.
 */
export async function startCli(
  args: string[],
  ready: RegExp,
  { nodeFlags: flags = [], bundled = false, script, cwd = repoRoot }: CliOptions = {},
): Promise<Started & { match: RegExpMatchArray }> {
  const entry = script ?? (bundled ? cliBundle() : undefined);
  const s = startProcess(process.execPath, entry ? [...flags, entry, ...args] : [...nodeFlags(flags), cliMain, ...args], { cwd });
  const from = script ? ` (${script})` : "";
  let stdout = "";
  const match = await new Promise<RegExpMatchArray>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`grpcrouter ${args[0]}${from}: no ${ready} after 60 s:\n${stdout}${s.output()}`)), 60_000);
    s.child.stdout!.on("data", (d: Buffer) => {
      stdout += d.toString();
      const m = stdout.match(ready);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    });
    s.child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`grpcrouter ${args.join(" ")}${from} exited (${code}):\n${stdout}${s.output()}`));
    });
  });
  return { ...s, match };
}

/** A port that was free a moment ago on `host` (for configs that need one up front). */
export { freePort } from "../../scripts/test-support/free-port.mjs";

/** Resolves once something accepts TCP connections on 127.0.0.1:port. */
export async function waitForPort(port: number, s: Started, what: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (s.child.exitCode !== null) throw new Error(`${what} exited (${s.child.exitCode}):\n${s.output()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, "127.0.0.1");
      c.once("connect", () => {
        c.destroy();
        resolve(true);
      });
      c.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`${what}: nothing listens on ${port} after ${timeoutMs / 1000} s:\n${s.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Stops one child (its whole process group): SIGTERM, then SIGKILL after `graceMs`. */
export async function stop(s: Started | ChildProcess, graceMs = 5000): Promise<void> {
  const child = "child" in s ? s.child : s;
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  signalGroup(child.pid, "SIGTERM");
  const timer = setTimeout(() => signalGroup(child.pid!, "SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
  signalGroup(child.pid, "SIGKILL"); // what is left of its group (a tsx worker, nginx's worker)
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((c) => stop(c)));
}

// Ctrl-C or a kill of the bench stops what it started before it exits.
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    void stopAll().finally(() => process.exit(130));
  });
}
process.once("exit", () => {
  for (const c of running) if (c.pid !== undefined) signalGroup(c.pid, "SIGKILL");
});

/** CPU time (user + system, ms) of every process in the given process groups, from /proc. */
export function groupCpuMs(groups: number[]): number {
  let ticks = 0;
  const wanted = new Set(groups);
  try {
    for (const name of readdirSync("/proc")) {
      if (!/^\d+$/.test(name)) continue;
      let stat: string;
      try {
        stat = readFileSync(`/proc/${name}/stat`, "utf8");
      } catch {
        continue; // exited meanwhile
      }
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (!wanted.has(Number(f[2]))) continue; // field 5: process group
      ticks += Number(f[11]) + Number(f[12]); // fields 14, 15: utime, stime
    }
  } catch {
    return NaN; // no /proc
  }
  return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
}
