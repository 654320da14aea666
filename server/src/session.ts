// What the client told the server about itself: its workspace folders, what it can do (pull
// settings, show progress, refresh lenses and tokens, watch files), and the `grpcrouter.*`
// settings of each folder, pulled once and cached until they change.
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Connection, DidChangeConfigurationParams, InitializeParams, WorkspaceFoldersChangeEvent } from "vscode-languageserver";
import { DEFAULT_SETTINGS, withDefaults, type Settings } from "./settings.js";
import { innermost, isInside } from "./workspace/modules.js";

export interface ClientCapabilities {
  /** workspace/configuration: settings are pulled per folder. */
  configuration: boolean;
  workDoneProgress: boolean;
  refreshLenses: boolean;
  refreshTokens: boolean;
  /** Dynamic registration of workspace/didChangeWatchedFiles. */
  watchFiles: boolean;
}

export class Session {
  folders: string[] = [];
  can: ClientCapabilities = { configuration: false, workDoneProgress: false, refreshLenses: false, refreshTokens: false, watchFiles: false };
  /** Settings pushed by the client (initializationOptions, didChangeConfiguration): the fallback. */
  private pushed: Settings = DEFAULT_SETTINGS;
  private cache = new Map<string, Promise<Settings>>();

  constructor(private readonly connection: Connection) {}

  initialize(params: InitializeParams): void {
    this.folders = (params.workspaceFolders ?? []).map((f) => fileURLToPath(f.uri));
    if (this.folders.length === 0 && params.rootUri) this.folders = [fileURLToPath(params.rootUri)];
    const c = params.capabilities;
    this.can = {
      configuration: !!c.workspace?.configuration,
      workDoneProgress: !!c.window?.workDoneProgress,
      refreshLenses: !!c.workspace?.codeLens?.refreshSupport,
      refreshTokens: !!c.workspace?.semanticTokens?.refreshSupport,
      watchFiles: !!c.workspace?.didChangeWatchedFiles?.dynamicRegistration,
    };
    const opts = params.initializationOptions as { settings?: unknown } | undefined;
    if (opts?.settings) this.pushed = withDefaults(opts.settings);
  }

  foldersChanged(e: WorkspaceFoldersChangeEvent): void {
    const removed = new Set(e.removed.map((f) => fileURLToPath(f.uri)));
    this.folders = [...this.folders.filter((f) => !removed.has(f)), ...e.added.map((f) => fileURLToPath(f.uri))];
    this.cache = new Map();
  }

  configurationChanged(change: DidChangeConfigurationParams): void {
    this.cache = new Map();
    const s = (change.settings as { grpcrouter?: unknown } | undefined)?.grpcrouter;
    if (s) this.pushed = withDefaults(s);
  }

  /** The workspace folder of a file: the innermost that holds it, else the file's folder. */
  folderOf(file: string): string {
    return innermost(this.folders, file) ?? path.dirname(file);
  }

  inWorkspace(file: string): boolean {
    return this.folders.some((w) => isInside(w, file));
  }

  settingsFor(folder: string): Promise<Settings> {
    let s = this.cache.get(folder);
    if (!s) {
      s = this.can.configuration
        ? this.connection.workspace.getConfiguration({ scopeUri: pathToFileURL(folder).href, section: "grpcrouter" }).then(withDefaults, () => this.pushed)
        : Promise.resolve(this.pushed);
      this.cache.set(folder, s);
    }
    return s;
  }
}
