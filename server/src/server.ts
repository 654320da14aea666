// The grpcrouter language server: compiles the module of each open .proto as the user types
// (with unsaved buffers), publishes diagnostics (with buf lint and buf breaking findings),
// generates on save, formats with buf format, and answers the editor's questions (definition,
// hover, symbols, completion, code lenses, semantic tokens) from the last good compile mapped
// onto the buffers as they are now.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import {
  CodeLensRefreshRequest,
  DiagnosticSeverity,
  DidChangeConfigurationNotification,
  DidChangeWatchedFilesNotification,
  FileChangeType,
  MessageType,
  SemanticTokensRefreshRequest,
  ShowMessageNotification,
  TextDocumentSyncKind,
  TextDocuments,
  type Connection,
  type Diagnostic as LspDiagnostic,
  type InitializeResult,
  type Range,
  type TextEdit,
  type WorkDoneProgressServerReporter,
} from "vscode-languageserver";
import { TextDocument } from "vscode-languageserver-textdocument";
import { liveSnapshot } from "./analysis/liveSnapshot.js";
import { mapRanges } from "./analysis/positionMap.js";
import { recoverIndex } from "./analysis/recovery.js";
import { Snapshot } from "./analysis/snapshot.js";
import { breaking, lint, lintConfigured, type CheckFindings } from "./features/bufChecks.js";
import { completion } from "./features/completion.js";
import { formatDocument } from "./features/formatting.js";
import { definition, hover } from "./features/navigation.js";
import { navigationCapabilities, registerNavigation } from "./features/navigationFeatures.js";
import { codeLenses, documentSymbols } from "./features/outline.js";
import { semanticTokens, SEMANTIC_TOKENS_LEGEND } from "./features/semanticTokens.js";
import * as adapter from "./generatorAdapter.js";
import { ROUTER_STATE_NOTIFICATION, RouterState, type RouterStateParams } from "./instanceCounts.js";
import { DEFAULT_SETTINGS, hasGrpcrouterConfig, outDirOf, withDefaults, type Settings } from "./settings.js";
import { printedProtos } from "./workspace/printedProtos.js";
import { declaresService, isInside, listProtoFiles, moduleForFile, type ProtoModule } from "./workspace/modules.js";

/** Custom protocol between the extension (or a test client) and this server. */
export const GENERATE_REQUEST = "grpcrouter/generate";
export const CHECK_REQUEST = "grpcrouter/check";
export const MODULES_REQUEST = "grpcrouter/modules";
export const GENERATED_NOTIFICATION = "grpcrouter/generated";

export interface GenerateSummary {
  root: string;
  out: string;
  ok: boolean;
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

/** Typing pauses shorter than this do not start a compile. */
const TYPING_DEBOUNCE_MS = 120;

interface ModuleState {
  module: ProtoModule;
  out: string;
  snapshot?: Snapshot;
  compileTimer?: NodeJS.Timeout;
  compileAbort?: AbortController;
  generateAbort?: AbortController;
  /** Files (absolute) we published diagnostics for, so we can clear them. */
  published: Set<string>;
  /** Problems of the last compile, and of the last generation (the four phases find more). */
  compiled?: Findings;
  generated?: Findings;
  /** Findings of buf lint and buf breaking on the last good compile. */
  checks?: CheckFindings[];
  checksAbort?: AbortController;
  /** The snapshot mapped onto the open buffers, for the versions it was made for. */
  live?: { snapshot: Snapshot; base: Snapshot; versions: Versions };
}

export function startServer(connection: Connection): void {
  const documents = new TextDocuments(TextDocument);
  const modules = new Map<string, ModuleState>();
  const router = new RouterState();
  let folders: string[] = [];
  let settingsCache = new Map<string, Promise<Settings>>();
  let canConfigure = false;
  let canProgress = false;
  let canRefreshLenses = false;
  let canRefreshTokens = false;
  let canWatch = false;
  let initSettings: Settings = DEFAULT_SETTINGS;

  const log = (m: string) => connection.console.log(m);

  connection.onInitialize((params): InitializeResult => {
    folders = (params.workspaceFolders ?? []).map((f) => fileURLToPath(f.uri));
    if (folders.length === 0 && params.rootUri) folders = [fileURLToPath(params.rootUri)];
    canConfigure = !!params.capabilities.workspace?.configuration;
    canProgress = !!params.capabilities.window?.workDoneProgress;
    canRefreshLenses = !!params.capabilities.workspace?.codeLens?.refreshSupport;
    canRefreshTokens = !!params.capabilities.workspace?.semanticTokens?.refreshSupport;
    canWatch = !!params.capabilities.workspace?.didChangeWatchedFiles?.dynamicRegistration;
    const opts = params.initializationOptions as { settings?: unknown } | undefined;
    if (opts?.settings) initSettings = withDefaults(opts.settings);
    return {
      capabilities: {
        textDocumentSync: { openClose: true, change: TextDocumentSyncKind.Incremental, save: { includeText: false }, willSaveWaitUntil: true },
        definitionProvider: true,
        hoverProvider: true,
        documentSymbolProvider: true,
        completionProvider: { triggerCharacters: [".", "(", " ", ":", '"', "/", "<", "=", "["] },
        codeLensProvider: { resolveProvider: false },
        ...navigationCapabilities,
        semanticTokensProvider: { legend: SEMANTIC_TOKENS_LEGEND, full: true, range: true },
        documentFormattingProvider: true,
        documentRangeFormattingProvider: true,
        workspace: { workspaceFolders: { supported: true, changeNotifications: true } },
      },
      serverInfo: { name: "grpcrouter", version: "0.1.0" },
    };
  });

  connection.onInitialized(() => {
    if (canConfigure) void connection.client.register(DidChangeConfigurationNotification.type, { section: "grpcrouter" });
    // Files changed on disk but not open (a rename by git, another tool, a file not open).
    if (canWatch) {
      void connection.client.register(DidChangeWatchedFilesNotification.type, {
        watchers: ["**/*.proto", "**/buf.yaml", "**/buf.lock", "**/buf.work.yaml"].map((globPattern) => ({ globPattern })),
      });
    }
    connection.workspace.onDidChangeWorkspaceFolders((e) => {
      const removed = new Set(e.removed.map((f) => fileURLToPath(f.uri)));
      folders = [...folders.filter((f) => !removed.has(f)), ...e.added.map((f) => fileURLToPath(f.uri))];
      settingsCache = new Map();
    });
  });

  connection.onDidChangeConfiguration((change) => {
    settingsCache = new Map();
    const s = (change.settings as { grpcrouter?: unknown } | undefined)?.grpcrouter;
    if (s) initSettings = withDefaults(s);
    // Settings may move module roots or output folders: start over and recompile.
    resetModules();
  });

  function resetModules(): void {
    for (const m of modules.values()) {
      // The old states' pending compiles would publish over the new ones: drop them. A
      // running generation finishes (it writes whole or not at all).
      clearTimeout(m.compileTimer);
      m.compileAbort?.abort();
      m.checksAbort?.abort();
      clearDiagnostics(m);
    }
    modules.clear();
    for (const d of documents.all()) void stateForUri(d.uri).then((m) => m && scheduleCompile(m, 0));
  }

  function folderOf(file: string): string {
    return folders.filter((f) => isInside(f, file)).sort((a, b) => b.length - a.length)[0] ?? path.dirname(file);
  }

  function settingsFor(folder: string): Promise<Settings> {
    let s = settingsCache.get(folder);
    if (!s) {
      s = canConfigure
        ? connection.workspace
            .getConfiguration({ scopeUri: pathToFileURL(folder).href, section: "grpcrouter" })
            .then(withDefaults, () => initSettings)
        : Promise.resolve(initSettings);
      settingsCache.set(folder, s);
    }
    return s;
  }

  async function stateForFile(file: string): Promise<ModuleState> {
    const folder = folderOf(file);
    const settings = await settingsFor(folder);
    const roots = settings.roots.map((r) => path.resolve(folder, r));
    const module = moduleForFile(file, { folders, roots });
    let m = modules.get(module.root);
    if (!m) {
      m = { module, out: outDirOf(settings, module.root, module.folder), published: new Set() };
      modules.set(module.root, m);
    }
    return m;
  }

  async function stateForUri(uri: string): Promise<ModuleState | undefined> {
    if (!uri.startsWith("file:")) return undefined;
    const file = fileURLToPath(uri);
    // Our read-only copies of built-in protos (opened by "go to definition") are no module.
    if (printedProtos.owns(file)) return undefined;
    return stateForFile(file);
  }

  /**
   * Unsaved buffers of the module: the compiler reads these instead of the disk. `versions`
   * records which edit of each open file they are, so diagnostics name the version they are
   * about and a result that an edit has overtaken is not published.
   */
  function overlayFor(m: ModuleState): { overlay: Map<string, string>; versions: Versions } {
    const overlay = new Map<string, string>();
    const versions: Versions = new Map();
    for (const d of documents.all()) {
      if (!d.uri.startsWith("file:")) continue;
      const file = fileURLToPath(d.uri);
      if (!isInside(m.module.root, file)) continue;
      overlay.set(file, d.getText());
      versions.set(d.uri, d.version);
    }
    return { overlay, versions };
  }

  /** True when an open file of the module was edited (or opened, closed) since `versions`. */
  function overtaken(m: ModuleState, versions: Versions): boolean {
    return !sameVersions(overlayFor(m).versions, versions);
  }

  // ---- diagnostics as you type -------------------------------------------------------

  function scheduleCompile(m: ModuleState, delay = TYPING_DEBOUNCE_MS): void {
    clearTimeout(m.compileTimer);
    m.compileTimer = setTimeout(() => void runCompile(m), delay);
  }

  async function runCompile(m: ModuleState): Promise<void> {
    // A newer buffer makes the running compile useless: cancel it (buf is killed).
    m.compileAbort?.abort();
    const ac = new AbortController();
    m.compileAbort = ac;
    let compiled: adapter.Compiled;
    const { overlay, versions } = overlayFor(m);
    try {
      compiled = await adapter.compile({ root: m.module.root, overlay, signal: ac.signal, out: m.out });
    } catch (e) {
      if (!ac.signal.aborted) log(`compile of ${m.module.root} failed: ${errorText(e)}`);
      return;
    }
    if (ac.signal.aborted) return;
    if (compiled.descriptors) m.snapshot = new Snapshot(compiled);
    m.compiled = { diagnostics: compiled.diagnostics, versions };
    await publish(m);
    if (compiled.descriptors) void runChecks(m, compiled, versions);
    else await recover(m, compiled, overlay, ac.signal);
    refreshViews();
  }

  function refreshViews(): void {
    if (canRefreshLenses) void connection.sendRequest(CodeLensRefreshRequest.type).catch(() => {});
    if (canRefreshTokens) void connection.sendRequest(SemanticTokensRefreshRequest.type).catch(() => {});
  }

  /**
   * The module does not compile: index what does (each broken file at its last good text, or
   * left out), so the features keep working for every file while one is broken.
   */
  async function recover(m: ModuleState, failed: adapter.Compiled, overlay: Map<string, string>, signal: AbortSignal): Promise<void> {
    const last = m.snapshot;
    try {
      const c = await recoverIndex({
        root: m.module.root,
        out: m.out,
        overlay,
        diagnostics: failed.diagnostics,
        lastGood: (file) => {
          const imp = last?.importPathOf(file);
          return imp ? last?.compiled.sources.get(imp) : undefined;
        },
        read: (file) => {
          try {
            return readFileSync(file, "utf8");
          } catch {
            return undefined;
          }
        },
        signal,
        compile: adapter.compile,
      });
      if (c && !signal.aborted) m.snapshot = new Snapshot(c);
    } catch (e) {
      if (!signal.aborted) log(`indexing the healthy part of ${m.module.root} failed: ${errorText(e)}`);
    }
  }

  /** buf lint (and buf breaking when a ref is set) of a good compile; publishes what they find. */
  async function runChecks(m: ModuleState, compiled: adapter.Compiled, versions: Versions): Promise<void> {
    m.checksAbort?.abort();
    const ac = new AbortController();
    m.checksAbort = ac;
    const settings = await settingsFor(m.module.folder);
    try {
      const found: CheckFindings[] = [];
      if (settings.lint.enable && lintConfigured(compiled.root)) found.push(await lint(compiled, ac.signal));
      if (settings.breaking.against) found.push(await breaking(compiled, settings.breaking.against, ac.signal));
      // Nothing was checked, and nothing was found before: the compile's publish stands.
      if (found.length === 0 && !m.checks?.length) return;
      if (ac.signal.aborted || overtaken(m, versions)) return;
      for (const f of found) if (f.general) log(f.general);
      m.checks = found;
      await publish(m);
    } catch (e) {
      if (!ac.signal.aborted) log(`buf checks of ${m.module.root} failed: ${errorText(e)}`);
    }
  }

  /**
   * Publishes the module's problems: those of the last compile, plus those of a generation of
   * the very same buffers (so a generation's findings neither vanish when the compile of the
   * same save lands after it, nor outlive an edit).
   */
  async function publish(m: ModuleState): Promise<void> {
    if (!m.compiled) return;
    const { versions } = m.compiled;
    const diagnostics =
      m.generated && sameVersions(m.generated.versions, versions) ? mergeDiagnostics(m.compiled.diagnostics, m.generated.diagnostics) : m.compiled.diagnostics;
    const settings = await settingsFor(m.module.folder);
    const byFile = new Map<string, LspDiagnostic[]>();
      for (const d of diagnostics) {
        // Beside the Buf extension, compile errors would show twice: the user turns ours off.
        // What only grpcrouter knows (routing options, generation) always shows.
        if (!settings.diagnostics.enable && d.source === "buf") continue;
        // A diagnostic about no file in particular (buf.yaml unreadable, buf missing) goes
        // on the open files of the module, at their first line, so it is not lost.
        const targets = d.file
          ? [path.resolve(m.module.root, d.file)]
          : documents
              .all()
              .filter((doc) => doc.uri.startsWith("file:"))
              .map((doc) => fileURLToPath(doc.uri))
              .filter((f) => isInside(m.module.root, f));
        for (const file of targets) {
          const list = byFile.get(file) ?? [];
          list.push(toLsp(d));
          byFile.set(file, list);
        }
      }
    // buf lint and buf breaking findings, on the files they name; a failure of buf itself (a
    // bad buf.yaml, an unknown git ref) goes on the open files, like other general problems.
    for (const f of m.checks ?? []) {
      for (const [file, list] of f.byFile) {
        // Found in the last good text: while the user types on (or the file is broken), they
        // move with the edits rather than point at lines that have moved.
        const now = documents.get(pathToFileURL(file).href)?.getText();
        const then = f.texts?.get(file);
        const moved = now !== undefined && then !== undefined ? mapRanges(list, then, now) : list;
        byFile.set(file, [...(byFile.get(file) ?? []), ...moved]);
      }
      if (!f.general) continue;
      for (const doc of documents.all()) {
        const file = doc.uri.startsWith("file:") ? fileURLToPath(doc.uri) : undefined;
        if (!file || !isInside(m.module.root, file)) continue;
        const general: LspDiagnostic = { range: { start: { line: 0, character: 0 }, end: { line: 0, character: 1 } }, severity: DiagnosticSeverity.Warning, message: f.general, source: "grpcrouter" };
        byFile.set(file, [...(byFile.get(file) ?? []), general]);
      }
    }
    // Open files of the module always get an answer, an empty one when they are clean.
    for (const doc of documents.all()) {
      const file = doc.uri.startsWith("file:") ? fileURLToPath(doc.uri) : undefined;
      if (file && isInside(m.module.root, file) && !byFile.has(file)) byFile.set(file, []);
    }
    for (const file of m.published) if (!byFile.has(file)) void connection.sendDiagnostics({ uri: pathToFileURL(file).href, diagnostics: [] });
    for (const [file, list] of byFile) {
      const uri = pathToFileURL(file).href;
      void connection.sendDiagnostics({ uri, version: versions.get(uri), diagnostics: list });
    }
    m.published = new Set(byFile.keys());
  }

  function clearDiagnostics(m: ModuleState): void {
    for (const file of m.published) void connection.sendDiagnostics({ uri: pathToFileURL(file).href, diagnostics: [] });
    m.published.clear();
  }

  documents.onDidChangeContent((e) => void stateForUri(e.document.uri).then((m) => m && scheduleCompile(m)));
  documents.onDidOpen((e) => void stateForUri(e.document.uri).then((m) => m && scheduleCompile(m, 0)));
  documents.onDidClose((e) => void stateForUri(e.document.uri).then((m) => m && scheduleCompile(m)));

  // ---- generate on save ----------------------------------------------------------------

  documents.onDidSave(async (e) => {
    const m = await stateForUri(e.document.uri);
    if (!m) return;
    // The saved text is what we last compiled (or is about to be): compile now, no debounce.
    scheduleCompile(m, 0);
    if (await wantsGenerateOnSave(m)) void generate(m, "save");
  });

  async function wantsGenerateOnSave(m: ModuleState): Promise<boolean> {
    const settings = await settingsFor(m.module.folder);
    if (!settings.generateOnSave) return false;
    if (hasGrpcrouterConfig(m.module.root, m.module.folder)) return true;
    if (m.snapshot && [...m.snapshot.index.byFqn.values()].some((d) => d.kind === "service" && m.snapshot!.compiled.importToFile.has(d.file))) return true;
    const files = listProtoFiles(m.module.root, [m.out]);
    return declaresService(files, (f) => documents.get(pathToFileURL(f).href)?.getText() ?? readFileSync(f, "utf8"));
  }

  async function generate(m: ModuleState, trigger: GenerateSummary["trigger"]): Promise<GenerateSummary> {
    // A save while generating makes the running generation stale: cancel it and start over.
    m.generateAbort?.abort();
    const ac = new AbortController();
    m.generateAbort = ac;
    const started = performance.now();
    const rel = path.relative(m.module.folder, m.module.root) || path.basename(m.module.root);
    let progress: WorkDoneProgressServerReporter | undefined;
    if (canProgress) {
      try {
        progress = await connection.window.createWorkDoneProgress();
        progress.begin("gRPC Router: generating", 0, rel, true);
        progress.token.onCancellationRequested(() => ac.abort());
      } catch {
        progress = undefined;
      }
    }
    const summary: GenerateSummary = { root: m.module.root, out: m.out, ok: false, written: 0, unchanged: 0, removed: 0, errors: 0, ms: 0, message: "", trigger };
    const { overlay, versions } = overlayFor(m);
    try {
      const r = await adapter.generateAndWrite({
        root: m.module.root,
        out: m.out,
        overlay,
        signal: ac.signal,
        onProgress: (message, percent) => progress?.report(percent ?? 0, message),
      });
      summary.errors = r.diagnostics.filter((d) => d.severity === "error").length;
      if (r.written) {
        summary.ok = true;
        summary.written = r.written.written.length;
        summary.unchanged = r.written.unchanged.length;
        summary.removed = r.written.removed.length;
      }
      // Generation finds problems the plain compile does not (it runs the four phases). When
      // the user typed on meanwhile, the compile of the newer text publishes instead.
      if (!ac.signal.aborted && !overtaken(m, versions)) {
        m.generated = { diagnostics: r.diagnostics, versions };
        // The compile of these buffers may still run; it publishes both when it lands.
        if (m.compiled && sameVersions(m.compiled.versions, versions)) await publish(m);
      }
    } catch (e) {
      if (ac.signal.aborted) {
        summary.cancelled = true;
      } else {
        summary.errors = 1;
        summary.message = `generation failed: ${errorText(e)}`;
      }
    } finally {
      progress?.done();
    }
    summary.ms = Math.round(performance.now() - started);
    const outRel = path.relative(m.module.folder, m.out) || ".";
    if (!summary.message) {
      summary.message = summary.cancelled
        ? `${rel}: generation cancelled (a newer one started)`
        : summary.ok
          ? `${outRel}: ${summary.written} written, ${summary.unchanged} unchanged, ${summary.removed} removed (${summary.ms} ms)`
          : `${rel}: not generated, ${summary.errors} error${summary.errors === 1 ? "" : "s"}; ${outRel} left as it was`;
    }
    log(`[generate] ${summary.message}`);
    void connection.sendNotification(GENERATED_NOTIFICATION, summary);
    return summary;
  }

  /** The modules named by a request: that of a file, or every module of the workspace. */
  async function modulesFor(uri: string | undefined): Promise<ModuleState[]> {
    if (uri) {
      const m = await stateForUri(uri);
      return m ? [m] : [];
    }
    const found = new Map<string, ModuleState>();
    for (const folder of folders) {
      for (const file of listProtoFiles(folder)) {
        const m = await stateForFile(file);
        if (!isInside(m.out, file)) found.set(m.module.root, m);
      }
    }
    return [...found.values()];
  }

  connection.onRequest(GENERATE_REQUEST, async (params: { uri?: string } | undefined) => {
    const ms = await modulesFor(params?.uri);
    const out: GenerateSummary[] = [];
    for (const m of ms) out.push(await generate(m, "command"));
    return out;
  });

  connection.onRequest(CHECK_REQUEST, async (params: { uri?: string } | undefined) => {
    const results = [];
    for (const m of await modulesFor(params?.uri)) {
      const r = await adapter.checkOutputs({ root: m.module.root, out: m.out, overlay: overlayFor(m).overlay });
      results.push({ root: m.module.root, out: m.out, stale: r.outdated, errors: r.diagnostics.filter((d) => d.severity === "error").map(adapter.formatDiagnostic) });
    }
    return results;
  });

  connection.onRequest(MODULES_REQUEST, async (params: { uri?: string } | undefined) => {
    return (await modulesFor(params?.uri)).map((m) => ({
      root: m.module.root,
      folder: m.module.folder,
      out: m.out,
      services: m.snapshot ? [...m.snapshot.index.byFqn.values()].filter((d) => d.kind === "service").map((d) => d.fqn) : [],
    }));
  });

  connection.onNotification(ROUTER_STATE_NOTIFICATION, (params: RouterStateParams) => {
    router.update(params);
    if (canRefreshLenses) void connection.sendRequest(CodeLensRefreshRequest.type).catch(() => {});
  });

  // ---- language features ---------------------------------------------------------------

  async function context(uri: string) {
    const doc = documents.get(uri);
    const m = await stateForUri(uri);
    if (!doc || !m) return undefined;
    return { doc, m, file: fileURLToPath(uri), text: doc.getText(), snapshot: live(m) };
  }

  /** The module's last good index, its spans mapped onto the open buffers as they are now. */
  function live(m: ModuleState): Snapshot | undefined {
    const base = m.snapshot;
    if (!base) return undefined;
    const { versions } = overlayFor(m);
    if (m.live && m.live.base === base && sameVersions(m.live.versions, versions)) return m.live.snapshot;
    const snapshot = liveSnapshot(base, (imp) => {
      const file = base.compiled.importToFile.get(imp);
      return file ? documents.get(pathToFileURL(file).href)?.getText() : undefined;
    });
    m.live = { snapshot, base, versions };
    return snapshot;
  }

  connection.onDefinition(async (p) => {
    const c = await context(p.textDocument.uri);
    return c?.snapshot ? (definition(c.snapshot, c.file, c.text, p.position) ?? null) : null;
  });
  connection.onHover(async (p) => {
    const c = await context(p.textDocument.uri);
    return c?.snapshot ? (hover(c.snapshot, c.file, c.text, p.position) ?? null) : null;
  });
  connection.onDocumentSymbol(async (p) => {
    const c = await context(p.textDocument.uri);
    return c?.snapshot ? documentSymbols(c.snapshot, c.file) : [];
  });
  connection.onCompletion(async (p) => {
    const c = await context(p.textDocument.uri);
    return c ? completion(c.snapshot, c.file, c.text, p.position) : [];
  });
  connection.onCodeLens(async (p) => {
    const c = await context(p.textDocument.uri);
    return c?.snapshot ? codeLenses(c.snapshot, c.file, p.textDocument.uri, router) : [];
  });

  connection.languages.semanticTokens.on(async (p) => {
    const c = await context(p.textDocument.uri);
    return c?.snapshot ? semanticTokens(c.snapshot, c.file, c.text) : { data: [] };
  });
  connection.languages.semanticTokens.onRange(async (p) => {
    const c = await context(p.textDocument.uri);
    return c?.snapshot ? semanticTokens(c.snapshot, c.file, c.text, p.range) : { data: [] };
  });

  // ---- formatting (buf format) ------------------------------------------------------------

  /** Edits of buf format, or none (with the reason shown) when buf cannot format the file. */
  async function format(uri: string, range?: Range): Promise<TextEdit[]> {
    const doc = documents.get(uri);
    if (!doc) return [];
    const r = await formatDocument(doc.getText(), uri, range);
    if (r.ok) return r.edits;
    log(`[format] ${uri}: ${r.reason}`);
    // A notification, not a request: nothing waits for the user to close it.
    void connection.sendNotification(ShowMessageNotification.type, { type: MessageType.Warning, message: `gRPC Router: ${r.reason}` });
    return [];
  }
  connection.onDocumentFormatting((p) => format(p.textDocument.uri));
  connection.onDocumentRangeFormatting((p) => format(p.textDocument.uri, p.range));
  // grpcrouter.format.onSave formats proto files only, whatever editor.formatOnSave says.
  documents.onWillSaveWaitUntil(async (e) => {
    const m = await stateForUri(e.document.uri);
    return m && (await settingsFor(m.module.folder)).format.onSave ? format(e.document.uri) : [];
  });

  // ---- files changed on disk ---------------------------------------------------------------

  connection.onDidChangeWatchedFiles(async (p) => {
    const touched = new Set<ModuleState>();
    // Only modules the editor works in (a file of theirs was opened) are compiled again.
    const known = new Set(modules.values());
    let layoutChanged = false;
    for (const change of p.changes) {
      if (!change.uri.startsWith("file:")) continue;
      const file = fileURLToPath(change.uri);
      // An open file is compiled from its buffer; our own output and read-only copies are no input.
      if (documents.get(change.uri) || printedProtos.owns(file)) continue;
      if (/^buf(\.work)?\.yaml$/.test(path.basename(file)) && change.type !== FileChangeType.Changed) layoutChanged = true;
      const m = await stateForFile(file);
      if (known.has(m) && !isInside(m.out, file)) touched.add(m);
    }
    // A buf.yaml that appeared or went away moves module roots: start over, as for settings.
    if (layoutChanged) return void resetModules();
    for (const m of touched) scheduleCompile(m);
  });

  // Ctrl+T before any file of a module was opened: compile the workspace's modules, once.
  let symbolsPrimed: Promise<void> | undefined;
  registerNavigation(connection, {
    documents,
    snapshots: async () => {
      symbolsPrimed ??= modulesFor(undefined).then(async (ms) => {
        for (const m of ms) if (!m.snapshot && !m.compiled) await runCompile(m);
      }).catch((e) => log(`workspace symbols: ${errorText(e)}`));
      await symbolsPrimed;
      return [...modules.values()].flatMap((m) => (m.snapshot ? [m.snapshot] : []));
    },
    moduleOf: async (uri) => {
      const m = await stateForUri(uri);
      const snap = m?.snapshot;
      if (!snap) return m && {};
      const read = (file: string) => {
        try {
          return documents.get(pathToFileURL(file).href)?.getText() ?? readFileSync(file, "utf8");
        } catch {
          return undefined;
        }
      };
      return { snapshot: snap, texts: { files: snap.compiled.importToFile, read, inWorkspace: (f: string) => folders.some((w) => isInside(w, f)) } };
    },
  });

  connection.onShutdown(() => {
    for (const m of modules.values()) {
      clearTimeout(m.compileTimer);
      m.compileAbort?.abort();
      m.generateAbort?.abort();
      m.checksAbort?.abort();
    }
  });

  documents.listen(connection);
  connection.listen();
}

/** Open document URI → its version (LSP's count of edits). */
type Versions = Map<string, number>;

interface Findings {
  diagnostics: adapter.Diagnostic[];
  /** The buffers they were found in. */
  versions: Versions;
}

function sameVersions(a: Versions, b: Versions): boolean {
  if (a.size !== b.size) return false;
  for (const [uri, v] of a) if (b.get(uri) !== v) return false;
  return true;
}

function toLsp(d: adapter.Diagnostic): LspDiagnostic {
  // Ours are 1-based with an exclusive end column; LSP is 0-based.
  const line = Math.max(0, d.line - 1);
  const character = Math.max(0, d.column - 1);
  let endLine = Math.max(line, d.endLine - 1);
  let endCharacter = Math.max(0, d.endColumn - 1);
  if (endLine === line && endCharacter <= character) {
    endLine = line;
    endCharacter = character + 1;
  }
  return {
    range: { start: { line, character }, end: { line: endLine, character: endCharacter } },
    severity: d.severity === "error" ? DiagnosticSeverity.Error : d.severity === "warning" ? DiagnosticSeverity.Warning : DiagnosticSeverity.Information,
    message: d.message,
    source: d.source === "buf" ? "buf" : "grpcrouter",
  };
}

function mergeDiagnostics(a: adapter.Diagnostic[], b: adapter.Diagnostic[]): adapter.Diagnostic[] {
  const seen = new Set<string>();
  const out: adapter.Diagnostic[] = [];
  for (const d of [...a, ...b]) {
    const k = `${d.file}:${d.line}:${d.column}:${d.message}`;
    if (!seen.has(k)) {
      seen.add(k);
      out.push(d);
    }
  }
  return out;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
