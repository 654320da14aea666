// The grpcrouter language server: compiles the module of each open .proto as the user types
// (with unsaved buffers), publishes diagnostics (with buf lint and buf breaking findings),
// generates on save, formats with buf format, and answers the editor's questions (definition,
// hover, symbols, completion, code lenses, semantic tokens) from the last good compile mapped
// onto the buffers as they are now.
//
// This file wires the parts, each with one job:
//   session.ts                   the client's folders, capabilities and settings
//   module-states.ts             the modules being edited, their buffers and last good index
//   module-analysis.ts           compile after edits, publish diagnostics, lint, watched files
//   generation.ts                generate on save and by command (our protocol's requests)
//   features/register-features.ts the language features (definition, hover, … formatting)
import {
  DidChangeConfigurationNotification,
  DidChangeWatchedFilesNotification,
  TextDocumentSyncKind,
  TextDocuments,
  type Connection,
  type InitializeResult,
} from "vscode-languageserver";
import { TextDocument } from "vscode-languageserver-textdocument";
import type { Snapshot } from "./analysis/snapshot.js";
import { featureCapabilities, registerFeatures } from "./features/register-features.js";
import { Generation } from "./generation.js";
import { errorText, ModuleAnalysis } from "./module-analysis.js";
import { ModuleStates, type ModuleState } from "./module-states.js";
import { Session } from "./session.js";

/** What the server watches on disk: sources, and the files that decide module roots. */
const WATCHED = ["**/*.proto", "**/buf.yaml", "**/buf.lock", "**/buf.work.yaml"];

export function startServer(connection: Connection): void {
  const documents = new TextDocuments(TextDocument);
  const log = (m: string) => connection.console.log(m);
  const session = new Session(connection);
  const states = new ModuleStates(session, documents);
  const analysis = new ModuleAnalysis(connection, session, states, log);
  const generation = new Generation(connection, session, states, analysis, log);

  connection.onInitialize((params): InitializeResult => {
    session.initialize(params);
    return {
      capabilities: {
        textDocumentSync: { openClose: true, change: TextDocumentSyncKind.Incremental, save: { includeText: false }, willSaveWaitUntil: true },
        ...featureCapabilities,
        workspace: { workspaceFolders: { supported: true, changeNotifications: true } },
      },
      serverInfo: { name: "grpcrouter", version: "0.1.0" },
    };
  });

  connection.onInitialized(() => {
    if (session.can.configuration) void connection.client.register(DidChangeConfigurationNotification.type, { section: "grpcrouter" });
    // Files changed on disk but not open (a rename by git, another tool, a file not open).
    if (session.can.watchFiles)
      void connection.client.register(DidChangeWatchedFilesNotification.type, { watchers: WATCHED.map((globPattern) => ({ globPattern })) });
    connection.workspace.onDidChangeWorkspaceFolders((e) => session.foldersChanged(e));
  });

  connection.onDidChangeConfiguration((change) => {
    session.configurationChanged(change);
    // Settings may move module roots or output folders: start over and recompile.
    startOver();
  });

  /** Forgets every module and compiles those of the open files again. */
  function startOver(): void {
    for (const m of states.clear()) {
      // The old states' pending compiles would publish over the new ones: drop them. A
      // running generation finishes (it writes whole or not at all).
      analysis.cancel(m);
      analysis.clearDiagnostics(m);
    }
    for (const d of documents.all()) void states.forUri(d.uri).then((m) => m && analysis.soon(m));
  }

  // ---- document sync -------------------------------------------------------------------
  const withModule = (uri: string, then: (m: ModuleState) => unknown) =>
    void states
      .forUri(uri)
      .then((m) => m && then(m))
      .catch((e) => log(`${uri}: ${errorText(e)}`));
  documents.onDidChangeContent((e) => withModule(e.document.uri, (m) => analysis.edited(m)));
  documents.onDidOpen((e) => withModule(e.document.uri, (m) => analysis.soon(m)));
  documents.onDidClose((e) => withModule(e.document.uri, (m) => analysis.edited(m)));
  documents.onDidSave((e) =>
    withModule(e.document.uri, (m) => {
      analysis.saved(m);
      return generation.saved(m);
    }),
  );
  connection.onDidChangeWatchedFiles(async (p) => {
    // A buf.yaml that appeared or went away moves module roots: start over, as for settings.
    if (await analysis.filesChanged(p, (uri) => documents.get(uri) !== undefined)) startOver();
  });

  // ---- requests ------------------------------------------------------------------------
  generation.register();
  // Ctrl+T before any file of a module was opened: compile the workspace's modules, once.
  let symbolsPrimed: Promise<void> | undefined;
  const workspaceSnapshots = async (): Promise<Snapshot[]> => {
    symbolsPrimed ??= states
      .named(undefined)
      .then(async (ms) => {
        for (const m of ms) if (!m.snapshot && !m.compiled) await analysis.compile(m);
      })
      .catch((e) => log(`workspace symbols: ${errorText(e)}`));
    await symbolsPrimed;
    return states.all().flatMap((m) => (m.snapshot ? [m.snapshot] : []));
  };
  registerFeatures({ connection, documents, session, states, log, workspaceSnapshots, indexed: (m) => analysis.indexed(m) });

  connection.onShutdown(() => {
    for (const m of states.all()) {
      analysis.cancel(m);
      m.generateAbort?.abort();
    }
  });

  documents.listen(connection);
  connection.listen();
}
