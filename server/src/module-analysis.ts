// Diagnostics as you type: compiles a module (with its unsaved buffers) after each edit,
// publishes its problems, keeps its last good index (or that of its healthy part while a file
// is broken), then runs buf lint and buf breaking on a good compile. Files changed on disk
// (not open) are compiled again too.
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { CodeLensRefreshRequest, FileChangeType, SemanticTokensRefreshRequest, type Connection, type DidChangeWatchedFilesParams } from "vscode-languageserver";
import { recoverIndex } from "./analysis/recover-index.js";
import { Snapshot } from "./analysis/snapshot.js";
import { isBufConfig } from "./buf-config.js";
import { CompileScheduler } from "./compile-scheduler.js";
import { breaking, lint, type CheckFindings } from "./features/buf-checks.js";
import * as adapter from "./generator-adapter.js";
import { diagnosticsByFile } from "./module-diagnostics.js";
import { sameVersions, type ModuleState, type ModuleStates, type Versions } from "./module-states.js";
import type { Session } from "./session.js";
import { isInside } from "./workspace/modules.js";
import { printedProtos } from "./workspace/printed-protos.js";

export class ModuleAnalysis {
  /** Requests waiting for a module's first index (see indexed()). */
  private readonly awaitingIndex = new Map<ModuleState, (() => void)[]>();

  constructor(
    private readonly connection: Connection,
    private readonly session: Session,
    private readonly states: ModuleStates,
    private readonly log: (message: string) => void,
  ) {}

  /** A buffer of the module changed: compile now, or when the burst of edits pauses. */
  edited(m: ModuleState): void {
    this.scheduler(m).edited();
  }

  /** Compile without waiting for more edits (the module was opened or saved). */
  soon(m: ModuleState): void {
    this.scheduler(m).soon();
  }

  /**
   * A file of the module was saved. The compiler reads the buffers, not the disk, so a save
   * changes no input: compile only when these buffers are neither compiled nor compiling (a
   * burst's wait ends now). Compiling them again would kill a compile of the very same text,
   * and rerun buf lint and breaking beside the generation the save starts.
   */
  saved(m: ModuleState): void {
    // An editor that watches no files for us tells of no change on disk (a buf.yaml edited
    // beside, a file not open): a save is when its user expects them seen.
    if (!this.session.can.watchFiles) return this.diskChanged(m);
    const last = m.compiling ?? m.compiled?.versions;
    if (m.scheduler?.pending || !last || !sameVersions(last, this.states.overlayFor(m).versions)) this.soon(m);
  }

  /** Stops everything running or waiting for the module (it is dropped or the server stops). */
  cancel(m: ModuleState): void {
    m.scheduler?.cancel();
    m.compileAbort?.abort();
    m.checksAbort?.abort();
    this.wakeIndexWaiters(m);
  }

  /**
   * Resolves once the module has an index, or when no compile waits or runs for it. For the
   * answers VS Code keeps until the text changes (the outline, the breadcrumbs): asked the
   * moment a file opens, before its module compiled, they would stay empty.
   */
  indexed(m: ModuleState): Promise<void> {
    if (m.snapshot || (m.compiling === undefined && !m.scheduler?.pending)) return Promise.resolve();
    return new Promise((resolve) => {
      const waiting = this.awaitingIndex.get(m);
      if (waiting) waiting.push(resolve);
      else this.awaitingIndex.set(m, [resolve]);
    });
  }

  private wakeIndexWaiters(m: ModuleState): void {
    const waiting = this.awaitingIndex.get(m);
    if (!waiting) return;
    this.awaitingIndex.delete(m);
    for (const resolve of waiting) resolve();
  }

  private scheduler(m: ModuleState): CompileScheduler {
    m.scheduler ??= new CompileScheduler(() => void this.compile(m));
    return m.scheduler;
  }

  async compile(m: ModuleState): Promise<void> {
    // A newer buffer makes the running compile useless: cancel it (buf is killed), and the
    // lint of the last one, whose findings the edit overtakes (it runs again on this result).
    m.compileAbort?.abort();
    m.checksAbort?.abort();
    const ac = new AbortController();
    m.compileAbort = ac;
    const seq = ++m.compileSeq;
    const { overlay, versions } = this.states.overlayFor(m);
    m.compiling = versions;
    let compiled: adapter.Compiled;
    try {
      compiled = await adapter.compile({ root: m.module.root, overlay, signal: ac.signal, out: m.out });
    } catch (e) {
      if (!ac.signal.aborted) {
        m.compiling = undefined;
        this.log(`compile of ${m.module.root} failed: ${errorText(e)}`);
        this.wakeIndexWaiters(m);
      }
      return;
    }
    if (ac.signal.aborted) return;
    m.compiling = undefined;
    // Diagnostics first: they are what the user waits for; the index is built after.
    m.compiled = { diagnostics: compiled.diagnostics, versions };
    // buf cannot read the module's buf.yaml: its lint rules are unknown, so the findings of
    // the old ones go (the error on buf.yaml says why there are none).
    if (!compiled.descriptors && compiled.diagnostics.some((d) => d.severity === "error" && isBufConfig(d.file))) m.checks = undefined;
    await this.publish(m);
    if (compiled.descriptors) {
      this.keepSnapshot(m, compiled, seq);
      void this.check(m, compiled, versions);
    } else {
      await this.recover(m, compiled, overlay, ac.signal, seq);
    }
    this.wakeIndexWaiters(m);
    this.refreshViews();
  }

  /** The index of a compile, unless one of newer text was kept meanwhile. */
  private keepSnapshot(m: ModuleState, compiled: adapter.Compiled, seq: number): void {
    if (seq <= m.snapshotSeq) return;
    m.snapshot = new Snapshot(compiled);
    m.snapshotSeq = seq;
  }

  refreshViews(): void {
    if (this.session.can.refreshLenses) void this.connection.sendRequest(CodeLensRefreshRequest.type).catch(() => {});
    if (this.session.can.refreshTokens) void this.connection.sendRequest(SemanticTokensRefreshRequest.type).catch(() => {});
  }

  /**
   * The module does not compile: index what does (each broken file at its last good text, or
   * left out), so the features keep working for every file while one is broken.
   */
  private async recover(m: ModuleState, failed: adapter.Compiled, overlay: Map<string, string>, signal: AbortSignal, seq: number): Promise<void> {
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
        read: adapter.readOrUndefined,
        signal,
        compile: adapter.compile,
      });
      if (c && !signal.aborted) this.keepSnapshot(m, c, seq);
    } catch (e) {
      if (!signal.aborted) this.log(`indexing the healthy part of ${m.module.root} failed: ${errorText(e)}`);
    }
  }

  /** buf lint (and buf breaking when a ref is set) of a good compile; publishes what they find. */
  private async check(m: ModuleState, compiled: adapter.Compiled, versions: Versions): Promise<void> {
    m.checksAbort?.abort();
    const ac = new AbortController();
    m.checksAbort = ac;
    const settings = await this.session.settingsFor(m.module.folder);
    try {
      const found: CheckFindings[] = [];
      const linted = settings.lint.enable ? await lint(compiled, ac.signal) : undefined;
      if (linted) found.push(linted);
      if (settings.breaking.against) found.push(await breaking(compiled, settings.breaking.against, ac.signal));
      // Nothing was checked, and nothing was found before: the compile's publish stands.
      if (found.length === 0 && !m.checks?.length) return;
      if (ac.signal.aborted || this.states.overtaken(m, versions)) return;
      for (const f of found) if (f.general) this.log(f.general);
      m.checks = found;
      await this.publish(m);
    } catch (e) {
      if (!ac.signal.aborted) this.log(`buf checks of ${m.module.root} failed: ${errorText(e)}`);
    }
  }

  /** Publishes the module's problems (see module-diagnostics.ts), and clears those now gone. */
  async publish(m: ModuleState): Promise<void> {
    if (!m.compiled) return;
    const settings = await this.session.settingsFor(m.module.folder);
    const byFile = diagnosticsByFile({
      root: m.module.root,
      folder: m.module.folder,
      compiled: m.compiled,
      generated: m.generated,
      checks: m.checks,
      showCompileErrors: settings.diagnostics.enable,
      openFiles: this.states.openFiles(m),
      openText: (file) => this.states.openText(file),
      configText: adapter.readOrUndefined,
    });
    for (const file of m.published) if (!byFile.has(file)) void this.connection.sendDiagnostics({ uri: pathToFileURL(file).href, diagnostics: [] });
    const { versions } = m.compiled;
    for (const [file, list] of byFile) {
      const uri = pathToFileURL(file).href;
      void this.connection.sendDiagnostics({ uri, version: versions.get(uri), diagnostics: list });
    }
    m.published = new Set(byFile.keys());
  }

  clearDiagnostics(m: ModuleState): void {
    for (const file of m.published) void this.connection.sendDiagnostics({ uri: pathToFileURL(file).href, diagnostics: [] });
    m.published.clear();
  }

  /**
   * Files changed on disk (a rename by git, another tool, a file not open). Returns true when
   * a buf.yaml appeared or went away: module roots may have moved, the caller starts over.
   */
  async filesChanged(p: DidChangeWatchedFilesParams, isOpen: (uri: string) => boolean): Promise<boolean> {
    const touched = new Set<ModuleState>();
    // Only modules the editor works in (a file of theirs was opened) are compiled again.
    const known = new Set(this.states.all());
    let layoutChanged = false;
    for (const change of p.changes) {
      if (!change.uri.startsWith("file:")) continue;
      const file = fileURLToPath(change.uri);
      // An open file is compiled from its buffer; our own output and read-only copies are no input.
      if (isOpen(change.uri) || printedProtos.owns(file)) continue;
      if (/^buf(\.work)?\.yaml$/.test(path.basename(file)) && change.type !== FileChangeType.Changed) layoutChanged = true;
      const m = await this.states.forFile(file);
      if (known.has(m) && !isInside(m.out, file)) touched.add(m);
    }
    if (layoutChanged) return true;
    for (const m of touched) this.diskChanged(m);
    return false;
  }

  /** A file of the module changed on disk (not an open one): compile again. */
  private diskChanged(m: ModuleState): void {
    // A generation read the disk as it was (a buf.yaml that did not parse, say): its
    // problems are no longer those of the module, and one still running lands stale.
    m.diskChanges++;
    m.generated = undefined;
    this.edited(m);
  }
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
