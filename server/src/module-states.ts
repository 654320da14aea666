// The proto modules the editor works in, each with what the server knows of it: its last good
// compile, the problems found in it, and the compile, checks and generation running for it.
// Also the unsaved buffers of a module, with the document versions they are.
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { TextDocuments } from "vscode-languageserver";
import type { TextDocument } from "vscode-languageserver-textdocument";
import { liveSnapshot } from "./analysis/live-snapshot.js";
import type { Snapshot } from "./analysis/snapshot.js";
import type { CompileScheduler } from "./compile-scheduler.js";
import type { CheckFindings } from "./features/buf-checks.js";
import type { Diagnostic } from "./generator-adapter.js";
import type { Session } from "./session.js";
import { outDirOf } from "./settings.js";
import { printedProtos } from "./workspace/printed-protos.js";
import { isInside, listProtoFiles, moduleForFile, type ProtoModule } from "./workspace/modules.js";

/** Open document URI → its version (LSP's count of edits). */
export type Versions = Map<string, number>;

export interface Findings {
  diagnostics: Diagnostic[];
  /** The buffers they were found in. */
  versions: Versions;
}

export interface ModuleState {
  module: ProtoModule;
  out: string;
  /** The last good compile (or the index of the healthy part of a broken module). */
  snapshot?: Snapshot;
  /** Compiles started, and the number of the one the snapshot came from (newer wins). */
  compileSeq: number;
  snapshotSeq: number;
  /** When to compile next (made by the analysis on the module's first edit). */
  scheduler?: CompileScheduler;
  /** The buffers the running compile reads (undefined when none runs). */
  compiling?: Versions;
  compileAbort?: AbortController;
  generateAbort?: AbortController;
  checksAbort?: AbortController;
  /** Files (absolute) we published diagnostics for, so we can clear them. */
  published: Set<string>;
  /** Changes on disk noticed (files not open, buf.yaml): a generation begun before one is stale. */
  diskChanges: number;
  /** Problems of the last compile, and of the last generation (the four phases find more). */
  compiled?: Findings;
  generated?: Findings;
  /** Findings of buf lint and buf breaking on the last good compile. */
  checks?: CheckFindings[];
  /** The snapshot mapped onto the open buffers, for the versions it was made for. */
  live?: { snapshot: Snapshot; base: Snapshot; versions: Versions };
}

export class ModuleStates {
  private readonly byRoot = new Map<string, ModuleState>();
  /**
   * The module of each file asked about, so that a request does not walk up the folders for a
   * buf.yaml again. Roots move only with the settings or buf.yaml files (which clear() all)
   * and the workspace folders (these). Kept only when the client tells us of buf.yaml files
   * coming and going (it watches files for us).
   */
  private readonly ofFile = new Map<string, ModuleState>();
  private ofFileFolders: string[] = [];

  constructor(
    private readonly session: Session,
    private readonly documents: TextDocuments<TextDocument>,
  ) {}

  all(): ModuleState[] {
    return [...this.byRoot.values()];
  }

  /** Forgets every module (settings or buf.yaml files moved roots); returns the old ones. */
  clear(): ModuleState[] {
    const old = this.all();
    this.byRoot.clear();
    this.ofFile.clear();
    return old;
  }

  async forFile(file: string): Promise<ModuleState> {
    const known = this.session.folders === this.ofFileFolders ? this.ofFile.get(file) : undefined;
    if (known) return known;
    const folder = this.session.folderOf(file);
    const settings = await this.session.settingsFor(folder);
    const roots = settings.roots.map((r) => path.resolve(folder, r));
    const module = moduleForFile(file, { folders: this.session.folders, roots });
    let m = this.byRoot.get(module.root);
    if (!m) {
      m = { module, out: outDirOf(settings, module.root, module.folder), published: new Set(), compileSeq: 0, snapshotSeq: 0, diskChanges: 0 };
      this.byRoot.set(module.root, m);
    }
    if (this.session.can.watchFiles) {
      if (this.session.folders !== this.ofFileFolders) {
        this.ofFile.clear();
        this.ofFileFolders = this.session.folders;
      }
      this.ofFile.set(file, m);
    }
    return m;
  }

  async forUri(uri: string): Promise<ModuleState | undefined> {
    if (!uri.startsWith("file:")) return undefined;
    const file = fileURLToPath(uri);
    // Our read-only copies of built-in protos (opened by "go to definition") are no module.
    if (printedProtos.owns(file)) return undefined;
    return this.forFile(file);
  }

  /** The modules named by a request: that of a file, or every module of the workspace. */
  async named(uri: string | undefined): Promise<ModuleState[]> {
    if (uri) {
      const m = await this.forUri(uri);
      return m ? [m] : [];
    }
    const found = new Map<string, ModuleState>();
    for (const folder of this.session.folders) {
      for (const file of listProtoFiles(folder)) {
        const m = await this.forFile(file);
        if (!isInside(m.out, file)) found.set(m.module.root, m);
      }
    }
    return [...found.values()];
  }

  /** Open files (absolute paths) of a module. */
  openFiles(m: ModuleState): string[] {
    return this.documents
      .all()
      .filter((d) => d.uri.startsWith("file:"))
      .map((d) => fileURLToPath(d.uri))
      .filter((f) => isInside(m.module.root, f));
  }

  /** The text of a file: its buffer when open. */
  openText(file: string): string | undefined {
    return this.documents.get(pathToFileURL(file).href)?.getText();
  }

  /**
   * Unsaved buffers of the module: the compiler reads these instead of the disk. `versions`
   * records which edit of each open file they are, so diagnostics name the version they are
   * about and a result that an edit has overtaken is not published.
   */
  overlayFor(m: ModuleState): { overlay: Map<string, string>; versions: Versions } {
    const overlay = new Map<string, string>();
    const versions: Versions = new Map();
    for (const d of this.documents.all()) {
      if (!d.uri.startsWith("file:")) continue;
      const file = fileURLToPath(d.uri);
      if (!isInside(m.module.root, file)) continue;
      overlay.set(file, d.getText());
      versions.set(d.uri, d.version);
    }
    return { overlay, versions };
  }

  /** True when an open file of the module was edited (or opened, closed) since `versions`. */
  overtaken(m: ModuleState, versions: Versions): boolean {
    return !sameVersions(this.overlayFor(m).versions, versions);
  }

  /** The module's last good index, its spans mapped onto the open buffers as they are now. */
  live(m: ModuleState): Snapshot | undefined {
    const base = m.snapshot;
    if (!base) return undefined;
    const { versions } = this.overlayFor(m);
    if (m.live && m.live.base === base && sameVersions(m.live.versions, versions)) return m.live.snapshot;
    const snapshot = liveSnapshot(base, (imp) => {
      const file = base.compiled.importToFile.get(imp);
      return file ? this.openText(file) : undefined;
    });
    m.live = { snapshot, base, versions };
    return snapshot;
  }
}

export function sameVersions(a: Versions, b: Versions): boolean {
  if (a.size !== b.size) return false;
  for (const [uri, v] of a) if (b.get(uri) !== v) return false;
  return true;
}
