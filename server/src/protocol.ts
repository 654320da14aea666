// grpcrouter's own requests and notifications on top of LSP, the one definition the server,
// the VS Code extension and the tests share (as rust-analyzer's lsp_ext does). Each is typed
// with its parameters and result, so a change here is a compile error wherever it is used.
import { NotificationType, RequestType } from "vscode-languageserver-protocol";

/** Names a module by one of its files; no uri: every module of the workspace. */
export interface ModuleParams {
  uri?: string;
}

/** The outcome of one generation, also sent as `grpcrouter/generated` after every run. */
export interface GenerateSummary {
  /** The module root (absolute). */
  root: string;
  /** Its output folder (absolute). */
  out: string;
  ok: boolean;
  /** A newer generation of the same module (a later save) replaced this one. */
  cancelled?: boolean;
  written: number;
  unchanged: number;
  removed: number;
  errors: number;
  ms: number;
  /** Short human text, also logged: "gen: 12 written, 3 unchanged (84 ms)". */
  message: string;
  trigger: "save" | "command";
}

/** Whether a module's generated code is up to date (`grpcrouter check`). */
export interface CheckResult {
  root: string;
  out: string;
  /** Output files that are stale, missing or no longer produced (relative to `out`). */
  stale: string[];
  /** The module's errors, formatted `file:line:column: message`. */
  errors: string[];
}

export interface ModuleInfo {
  root: string;
  /** The workspace folder the module is in. */
  folder: string;
  out: string;
  /** Fully-qualified names of the services the module declares (from its last good compile). */
  services: string[];
}

/** What the server knows of a local router, from the extension (which runs and watches it). */
export interface RouterStateParams {
  running: boolean;
  /** e.g. "127.0.0.1:50051", when running. */
  address?: string;
  /** Service fqn → registered instances; absent when the count is not known. */
  instances?: Record<string, number>;
}

/** Generates the module(s) and writes the output: one summary per module. */
export const generateRequest = new RequestType<ModuleParams, GenerateSummary[], void>("grpcrouter/generate");
/** Compares the output with what generation would write, without writing. */
export const checkRequest = new RequestType<ModuleParams, CheckResult[], void>("grpcrouter/check");
/** The proto modules of a file, or of the workspace. */
export const modulesRequest = new RequestType<ModuleParams, ModuleInfo[], void>("grpcrouter/modules");
/** Server → client after every generation (on save or by command). */
export const generatedNotification = new NotificationType<GenerateSummary>("grpcrouter/generated");
/** Client → server whenever the local router starts, stops or its instances change. */
export const routerStateNotification = new NotificationType<RouterStateParams>("grpcrouter/routerState");
