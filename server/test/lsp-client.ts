// A small LSP client for tests: starts the BUNDLED server as a subprocess over stdio and
// speaks JSON-RPC to it with vscode-languageserver-protocol, the way an editor does.
import { spawn, type ChildProcess } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import {
  createProtocolConnection,
  StreamMessageReader,
  StreamMessageWriter,
  WorkDoneProgress,
  type Diagnostic,
  type Hover,
  type InitializeResult,
  type ProtocolConnection,
  type PublishDiagnosticsParams,
  type RequestType,
} from "vscode-languageserver-protocol/node";
import { generatedNotification, type GenerateSummary } from "../src/protocol.js";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

let bundled: Promise<string> | undefined;

/** Bundles the server once per test process into a folder of its own (no race on dist/). */
export function bundledServer(): Promise<string> {
  bundled ??= (async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-server-"));
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
    const mod = (await import(pathToFileURL(path.join(repoRoot, "extension/scripts/build.mjs")).href)) as {
      buildServer: (outfile: string, options?: { sourcemap?: boolean | "inline" }) => Promise<string>;
    };
    // Under `npm run coverage` (NODE_V8_COVERAGE set) the bundle carries a source map, so
    // the server process's coverage counts for server/src, runtime/src and generator/src.
    return mod.buildServer(path.join(dir, "server.js"), { sourcemap: process.env.NODE_V8_COVERAGE ? "inline" : false });
  })();
  return bundled;
}

/** A fresh copy of a test-fixtures folder, since generating writes into it. */
export function copyFixture(name: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `grpcrouter-${name}-`));
  cpSync(path.join(repoRoot, "test-fixtures", name), dir, { recursive: true });
  return dir;
}

export interface StartOptions {
  folders: string[];
  settings?: Record<string, unknown>;
  /** false: an editor that watches no files for the server (no workspace/didChangeWatchedFiles). */
  watchFiles?: boolean;
}

export class TestClient {
  readonly diagnostics = new Map<string, Diagnostic[]>();
  /** The document version the last diagnostics of a URI were computed from. */
  readonly diagnosticVersions = new Map<string, number | undefined>();
  private readonly publishes = new Map<string, number>();
  readonly notifications: { method: string; params: unknown }[] = [];
  readonly logs: string[] = [];
  /** Capabilities the server registered dynamically (client/registerCapability). */
  readonly registrations: { method: string; registerOptions?: unknown }[] = [];
  /** Work-done progress the server reported ($/progress values: begin, report, end). */
  readonly progress: { token: string | number; value: { kind: string; title?: string; message?: string } }[] = [];
  /** What the server answered to initialize (its capabilities). */
  initializeResult: InitializeResult | undefined;
  private readonly waiters = new Set<() => void>();
  private versions = new Map<string, number>();

  private constructor(
    readonly connection: ProtocolConnection,
    private readonly child: ChildProcess,
    private settings: Record<string, unknown>,
  ) {}

  static async start(opts: StartOptions): Promise<TestClient> {
    const server = await bundledServer();
    // cwd: the repo, so the server finds buf through node_modules as a developer's would.
    const child = spawn(process.execPath, [server, "--stdio"], { cwd: repoRoot, stdio: ["pipe", "pipe", "pipe"] });
    child.stderr!.on("data", (b: Buffer) => process.stderr.write(`[server] ${b}`));
    const connection = createProtocolConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
    const c = new TestClient(connection, child, opts.settings ?? {});
    connection.onNotification("textDocument/publishDiagnostics", (p: PublishDiagnosticsParams) => {
      c.diagnostics.set(p.uri, p.diagnostics);
      c.diagnosticVersions.set(p.uri, p.version);
      c.publishes.set(p.uri, (c.publishes.get(p.uri) ?? 0) + 1);
      c.wake();
    });
    // Every other notification (log messages, generate summaries) is recorded in order.
    connection.onUnhandledNotification(({ method, params }) => {
      c.notifications.push({ method, params });
      if (method === "window/logMessage") c.logs.push((params as { message: string }).message);
      c.wake();
    });
    connection.onRequest("workspace/configuration", (p: { items: { section?: string }[] }) =>
      p.items.map((i) => (i.section === "grpcrouter" ? c.settings : null)),
    );
    // Like an editor: accept the token the server creates, then show what it reports on it.
    connection.onRequest("window/workDoneProgress/create", ({ token }: { token: string | number }) => {
      connection.onProgress(WorkDoneProgress.type, token, (value) => {
        c.progress.push({ token, value });
        c.wake();
      });
      return null;
    });
    connection.onRequest("workspace/codeLens/refresh", () => null);
    connection.onRequest("workspace/semanticTokens/refresh", () => null);
    connection.onRequest("client/registerCapability", (p: { registrations: { method: string; registerOptions?: unknown }[] }) => {
      c.registrations.push(...p.registrations);
      c.wake();
      return null;
    });
    connection.listen();
    // A server that dies (a crash at load, say) fails the test with its exit, not a hang.
    const died = new Promise<never>((_, reject) =>
      child.once("exit", (code, signal) => reject(new Error(`the language server exited (${signal ?? `code ${code}`}) during initialize`))),
    );
    died.catch(() => {});
    c.initializeResult = await Promise.race([
      died,
      connection.sendRequest<InitializeResult>("initialize", {
        processId: process.pid,
        rootUri: null,
        workspaceFolders: opts.folders.map((f) => ({ uri: pathToFileURL(f).href, name: path.basename(f) })),
        capabilities: {
          workspace: {
            configuration: true,
            workspaceFolders: true,
            codeLens: { refreshSupport: true },
            semanticTokens: { refreshSupport: true },
            didChangeWatchedFiles: { dynamicRegistration: opts.watchFiles ?? true },
          },
          window: { workDoneProgress: true },
          textDocument: { hover: { contentFormat: ["markdown"] }, documentSymbol: { hierarchicalDocumentSymbolSupport: true } },
        },
      }),
    ]);
    await connection.sendNotification("initialized", {});
    return c;
  }

  private wake() {
    for (const w of [...this.waiters]) w();
  }

  /** Resolves when `check` returns a value (re-checked on every message), or rejects. */
  waitFor<T>(what: string, check: () => T | undefined, timeoutMs = 60_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const tryNow = () => {
        const v = check();
        if (v !== undefined) {
          this.waiters.delete(tryNow);
          clearTimeout(timer);
          resolve(v);
        }
      };
      const timer = setTimeout(() => {
        this.waiters.delete(tryNow);
        reject(new Error(`timed out waiting for ${what}`));
      }, timeoutMs);
      this.waiters.add(tryNow);
      tryNow();
    });
  }

  waitForDiagnostics(file: string, predicate: (d: Diagnostic[]) => boolean, timeoutMs?: number): Promise<Diagnostic[]> {
    const uri = pathToFileURL(file).href;
    return this.waitFor(
      `diagnostics of ${path.basename(file)}`,
      () => {
        const d = this.diagnostics.get(uri);
        return d && predicate(d) ? d : undefined;
      },
      timeoutMs,
    );
  }

  /** How many times the server published diagnostics for a file. */
  publishCount(file: string): number {
    return this.publishes.get(pathToFileURL(file).href) ?? 0;
  }

  /** Diagnostics of the buffer as it is now (not of an earlier edit). */
  waitForCurrentDiagnostics(file: string, timeoutMs?: number): Promise<Diagnostic[]> {
    const uri = pathToFileURL(file).href;
    return this.waitFor(
      `diagnostics of ${path.basename(file)} version ${this.versions.get(uri)}`,
      () => {
        const d = this.diagnostics.get(uri);
        return d && this.diagnosticVersions.get(uri) === this.versions.get(uri) ? d : undefined;
      },
      timeoutMs,
    );
  }

  open(file: string, text = readFileSync(file, "utf8")): string {
    const uri = pathToFileURL(file).href;
    this.versions.set(uri, 1);
    void this.connection.sendNotification("textDocument/didOpen", { textDocument: { uri, languageId: "proto", version: 1, text } });
    return uri;
  }

  /** Replaces the whole buffer (unsaved). */
  change(file: string, text: string): void {
    const uri = pathToFileURL(file).href;
    const version = (this.versions.get(uri) ?? 1) + 1;
    this.versions.set(uri, version);
    void this.connection.sendNotification("textDocument/didChange", { textDocument: { uri, version }, contentChanges: [{ text }] });
  }

  save(file: string): void {
    void this.connection.sendNotification("textDocument/didSave", { textDocument: { uri: pathToFileURL(file).href } });
  }

  /** A request: one of ours (typed by ../src/protocol.ts) or any LSP method by name. */
  request<P, R>(type: RequestType<P, R, void>, params: P): Promise<R>;
  request<T>(method: string, params: unknown): Promise<T>;
  request(method: string | RequestType<unknown, unknown, void>, params: unknown): Promise<unknown> {
    return this.connection.sendRequest(typeof method === "string" ? method : method.method, params);
  }

  /** The generate summaries (`grpcrouter/generated`) among the notifications since index `from`. */
  generatedSince(from = 0): GenerateSummary[] {
    return this.notifications
      .slice(from)
      .filter((n) => n.method === generatedNotification.method)
      .map((n) => n.params as GenerateSummary);
  }

  setSettings(settings: Record<string, unknown>): void {
    this.settings = settings;
    void this.connection.sendNotification("workspace/didChangeConfiguration", { settings: { grpcrouter: settings } });
  }

  async stop(): Promise<void> {
    const exited = new Promise((r) => (this.child.exitCode !== null || this.child.signalCode !== null ? r(undefined) : this.child.once("exit", r)));
    try {
      await Promise.race([this.connection.sendRequest("shutdown"), new Promise((r) => setTimeout(r, 5000))]);
      await this.connection.sendNotification("exit");
      // The server exits by itself on `exit` (which also lets it write its coverage under
      // `npm run coverage`); a server that does not is killed after a while.
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000).unref())]);
    } catch {
      // already gone
    }
    this.connection.dispose();
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill();
  }
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** For an `after` hook: stops the server and removes the workspace folder (either may be missing when `before` failed). */
export async function stopAndRemove(client: TestClient | undefined, ws: string | undefined): Promise<void> {
  await client?.stop();
  if (ws) removeDir(ws);
}

/** The test-fixtures/editor-workspace copy a server runs on, with orders.proto open and compiled. */
export interface EditorWorkspace {
  ws: string;
  client: TestClient;
  /** proto/shop/v1/orders.proto and money.proto of the copy. */
  orders: string;
  money: string;
  /** orders.proto's text as the fixture has it. */
  text: string;
  /** orders.proto's URI. */
  uri: string;
}

/**
 * A fresh copy of test-fixtures/editor-workspace (changed by `prepare`, if given) and a server
 * on it (`settings`: no generate on save by default), with orders.proto open and its first
 * (empty) diagnostics in: the features answer from that good compile. On failure, both are gone.
 */
export async function openEditorWorkspace(opts: { settings?: Record<string, unknown>; prepare?: (ws: string) => void } = {}): Promise<EditorWorkspace> {
  const ws = copyFixture("editor-workspace");
  const orders = path.join(ws, "proto/shop/v1/orders.proto");
  let client: TestClient | undefined;
  try {
    opts.prepare?.(ws);
    const text = readFileSync(orders, "utf8");
    client = await TestClient.start({ folders: [ws], settings: opts.settings ?? { generateOnSave: false } });
    const uri = client.open(orders);
    await client.waitForDiagnostics(orders, (d) => d.length === 0);
    return { ws, client, orders, money: path.join(ws, "proto/shop/v1/money.proto"), text, uri };
  } catch (e) {
    await stopAndRemove(client, ws);
    throw e;
  }
}

/** A diagnostic's message as text (LSP 3.18 lets it be markup; ours are plain strings). */
export const msg = (d: Diagnostic): string => (typeof d.message === "string" ? d.message : d.message.value);

/** A hover's markdown (or plain) text; "" for none. */
export const hoverText = (h: Hover | null): string => (h && typeof h.contents === "object" && "value" in h.contents ? h.contents.value : "");

export { pathToFileURL };
