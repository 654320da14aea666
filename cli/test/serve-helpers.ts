// Shared by the serve/bridge tests: the CLI as a real child process, the Echo module's
// schemas from its descriptors, a plain grpc-js Echo server standing in for "an existing
// server in any language", and a typed-enough client that calls through a router.
import { spawn, type ChildProcess } from "node:child_process";
import { cpSync, mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary, type DescMessage, type DescService, type MessageShape } from "@bufbuild/protobuf";
import { compileModule } from "@grpcrouter/generator";
import { addReflection, healthServiceDefinition } from "@grpcrouter/runtime";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const echoProtoDir = path.join(repoRoot, "examples/echo/proto");
const cliMain = path.join(repoRoot, "cli/src/main.ts");
// By URL: `--import tsx` would resolve from the child's cwd, a temporary folder.
const tsxLoader = pathToFileURL(path.join(repoRoot, "node_modules/tsx/dist/loader.mjs")).href;

export interface RunningOptions {
  cwd?: string;
  /** The child's whole environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** What stop() sends first (default SIGINT, Ctrl-C) and how long it waits before SIGKILL (default 15 s). */
  stopSignal?: NodeJS.Signals;
  stopGraceMs?: number;
  /** waitFor()'s default timeout (default 60 s). */
  waitMs?: number;
}

/** A child process whose output is kept and can be waited for. */
export class Running {
  readonly child: ChildProcess;
  stdout = "";
  stderr = "";
  readonly exited: Promise<number | null>;
  readonly #options: RunningOptions;
  #waiters: Array<() => void> = [];

  constructor(argv: string[], options: RunningOptions = {}) {
    this.#options = options;
    this.child = spawn(argv[0]!, argv.slice(1), {
      stdio: ["ignore", "pipe", "pipe"],
      ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
      ...(options.env ? { env: options.env } : {}),
    });
    this.child.stdout!.on("data", (b: Buffer) => {
      this.stdout += b.toString("utf8");
      this.#wake();
    });
    this.child.stderr!.on("data", (b: Buffer) => {
      this.stderr += b.toString("utf8");
      this.#wake();
    });
    this.exited = new Promise((resolve) =>
      this.child.once("exit", (code) => {
        this.#wake();
        resolve(code);
      }),
    );
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  get output(): string {
    return this.stdout + this.stderr;
  }

  /** Waits until the output (stdout + stderr) matches; returns the match. */
  async waitFor(re: RegExp, what = String(re), timeoutMs = this.#options.waitMs ?? 60_000): Promise<RegExpMatchArray> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const m = this.output.match(re);
      if (m) return m;
      if (this.child.exitCode !== null) throw new Error(`process exited (${this.child.exitCode}) before ${what}:\n${this.output}`);
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}:\n${this.output}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 200);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** The stop signal (Ctrl-C unless told), then the exit code (SIGKILL after `graceMs`). */
  async stop(graceMs = this.#options.stopGraceMs ?? 15_000): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    this.child.kill(this.#options.stopSignal ?? "SIGINT");
    const t = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    const code = await this.exited;
    clearTimeout(t);
    return code;
  }
}

/** The CLI (from source) as a real child process; `env` adds to this process's environment. */
export class CliProcess extends Running {
  constructor(args: string[], cwd: string, env?: NodeJS.ProcessEnv) {
    super([process.execPath, "--conditions=@grpcrouter/source", "--import", tsxLoader, cliMain, ...args], {
      cwd,
      ...(env ? { env: { ...process.env, ...env } } : {}),
    });
  }
}

export function cli(args: string[], cwd: string): CliProcess {
  return new CliProcess(args, cwd);
}

/** A new temporary folder (named after `prefix`) holding a copy of the Echo module at proto/. */
export function echoModuleDir(prefix: string): string {
  const tmp = mkdtempSync(path.join(os.tmpdir(), prefix));
  cpSync(echoProtoDir, path.join(tmp, "proto"), { recursive: true });
  return tmp;
}

/** The address `grpcrouter serve` listens on, once it says so. */
export async function routerAddress(serve: CliProcess): Promise<string> {
  return (await serve.waitFor(/router listening on (\S+)/, "the router address"))[1]!;
}

/** The Echo service as compiled from a module folder (no generated code). */
export async function echoSchemas(root: string): Promise<{ service: DescService; message(name: string): DescMessage }> {
  const compiled = await compileModule({ root });
  const registry = compiled.registry;
  if (!registry) throw new Error(`echo module does not compile: ${JSON.stringify(compiled.diagnostics)}`);
  const service = registry.getService("demo.v1.Echo");
  if (!service) throw new Error("no demo.v1.Echo");
  return {
    service,
    message(name) {
      const m = registry.getMessage(`demo.v1.${name}`);
      if (!m) throw new Error(`no demo.v1.${name}`);
      return m;
    },
  };
}

const codec = <D extends DescMessage>(schema: D) => ({
  serialize: (m: MessageShape<D>) => Buffer.from(toBinary(schema, m)),
  deserialize: (b: Buffer) => fromBinary(schema, b),
});

type Json = Record<string, unknown>;

/** A plain grpc-js Echo server: what `grpcrouter bridge` puts behind a router. */
export async function startPlainEcho(
  schemas: Awaited<ReturnType<typeof echoSchemas>>,
  name: string,
  port = 0,
  reflectionServices?: string[],
  setup?: (server: grpc.Server) => void,
): Promise<{ address: string; close(): Promise<void> }> {
  const SayRequest = codec(schemas.message("SayRequest"));
  const SayResponse = codec(schemas.message("SayResponse"));
  const CountRequest = codec(schemas.message("CountRequest"));
  const CountResponse = codec(schemas.message("CountResponse"));
  const CollectResponse = codec(schemas.message("CollectResponse"));
  const def = (m: string, reqStream: boolean, resStream: boolean, req: ReturnType<typeof codec>, res: ReturnType<typeof codec>) => ({
    path: `/demo.v1.Echo/${m}`,
    requestStream: reqStream,
    responseStream: resStream,
    requestSerialize: req.serialize,
    requestDeserialize: req.deserialize,
    responseSerialize: res.serialize,
    responseDeserialize: res.deserialize,
  });
  const sayRes = (text: string) => create(schemas.message("SayResponse"), { text, instanceId: name } as Json);
  const server = new grpc.Server();
  server.addService(
    {
      Say: def("Say", false, false, SayRequest, SayResponse),
      Count: def("Count", false, true, CountRequest, CountResponse),
      Collect: def("Collect", true, false, SayRequest, CollectResponse),
      Chat: def("Chat", true, true, SayRequest, SayResponse),
    } as grpc.ServiceDefinition,
    {
      Say: (call: grpc.ServerUnaryCall<Json, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        const md = new grpc.Metadata();
        md.set("x-served-by", name);
        call.sendMetadata(md);
        if (call.request.text === "fail") return cb({ code: grpc.status.FAILED_PRECONDITION, details: "asked to fail" });
        cb(null, sayRes(`${call.request.text as string}${call.metadata.get("x-suffix")[0] ?? ""}`));
      },
      Count: (call: grpc.ServerWritableStream<Json, unknown>) => {
        const n = call.request.count as number;
        if (n > 1000) return void call.emit("error", { code: grpc.status.INVALID_ARGUMENT, details: "count must be at most 1000" });
        for (let i = 1; i <= n; i++) call.write(create(schemas.message("CountResponse"), { text: call.request.text, index: i } as Json));
        call.end();
      },
      Collect: (call: grpc.ServerReadableStream<Json, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        const texts: string[] = [];
        call.on("data", (m: Json) => texts.push(m.text as string));
        call.on("end", () => cb(null, create(schemas.message("CollectResponse"), { text: texts.join(" "), count: texts.length } as Json)));
      },
      Chat: (call: grpc.ServerDuplexStream<Json, unknown>) => {
        call.on("data", (m: Json) => call.write(sayRes(m.text as string)));
        call.on("end", () => call.end());
      },
    },
  );
  // Server reflection listing these services (names only), when asked.
  if (reflectionServices) addReflection(server, [], [...reflectionServices, "grpc.reflection.v1.ServerReflection"]);
  setup?.(server);
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  return {
    address: `127.0.0.1:${bound}`,
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}

/** Calls demo.v1.Echo through `target` with messages built from the module's descriptors. */
export function echoClient(target: string, schemas: Awaited<ReturnType<typeof echoSchemas>>) {
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  const enc = (name: string, v: Json) => Buffer.from(toBinary(schemas.message(name), create(schemas.message(name), v)));
  const dec = (name: string) => (b: Buffer) => fromBinary(schemas.message(name), b) as unknown as Json;
  const id = (b: Buffer) => b;
  const deadline = () => new Date(Date.now() + 30_000);
  return {
    say(text: string, metadata = new grpc.Metadata(), timeoutMs = 30_000): Promise<{ res: Json; headers: grpc.Metadata }> {
      return new Promise((resolve, reject) => {
        let headers = new grpc.Metadata();
        const call = client.makeUnaryRequest(
          `/demo.v1.Echo/Say`,
          id,
          dec("SayResponse"),
          enc("SayRequest", { text }),
          metadata,
          { deadline: new Date(Date.now() + timeoutMs) },
          (e, r) => (e ? reject(e) : resolve({ res: r!, headers })),
        );
        call.on("metadata", (md) => (headers = md));
      });
    },
    count(text: string, count: number): Promise<Json[]> {
      return new Promise((resolve, reject) => {
        const out: Json[] = [];
        const s = client.makeServerStreamRequest(`/demo.v1.Echo/Count`, id, dec("CountResponse"), enc("CountRequest", { text, count }), new grpc.Metadata(), {
          deadline: deadline(),
        });
        s.on("data", (m: Json) => out.push(m));
        s.on("error", reject);
        s.on("end", () => resolve(out));
      });
    },
    /** Sends each text only after the answer to the previous one arrived (ping-pong). */
    chat(texts: string[]): Promise<Json[]> {
      return new Promise((resolve, reject) => {
        const out: Json[] = [];
        const s = client.makeBidiStreamRequest(`/demo.v1.Echo/Chat`, id, dec("SayResponse"), new grpc.Metadata(), { deadline: deadline() });
        let i = 0;
        const next = () => (i < texts.length ? s.write(enc("SayRequest", { text: texts[i++] })) : s.end());
        s.on("data", (m: Json) => {
          out.push(m);
          next();
        });
        s.on("error", reject);
        s.on("end", () => resolve(out));
        next();
      });
    },
    close: () => client.close(),
  };
}

const HEALTH = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"] as const;

/** grpc.health.v1 Check of `service` ("" is the server) at `address`: "SERVING", "NOT_SERVING", …; rejects when the call fails. */
export function healthOf(address: string, service = ""): Promise<string> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const def = healthServiceDefinition.Check!;
  return new Promise<string>((resolve, reject) =>
    // HealthCheckRequest is one string field (1): encoded by hand, the answer with the router's own codec.
    client.makeUnaryRequest(
      def.path,
      (name: string) => Buffer.concat([Buffer.from([0x0a, Buffer.byteLength(name)]), Buffer.from(name)]),
      def.responseDeserialize,
      service,
      { deadline: Date.now() + 5000 },
      (e, r) => {
        client.close();
        if (e) reject(e);
        else resolve(HEALTH[(r as { status: number }).status] ?? "?");
      },
    ),
  );
}

/** Polls `fn` until its value passes `ok` (a rejection counts as "not yet"); the timeout names the last value or error. */
export async function poll<T>(fn: () => Promise<T>, ok: (v: T) => boolean, what: string, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (ok(v)) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Polls `cond` (a rejection counts as "not yet") until it holds, up to a generous deadline. */
export async function until(what: string, cond: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A TCP port free on `host` now (e.g. one port for routers on 127.0.0.2, .3, … as pods). */
export { freePort } from "../../scripts/test-support/free-port.mjs";
