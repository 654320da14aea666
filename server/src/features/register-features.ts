// Registers the language features on the connection: definition, hover, outline, completion,
// code lenses (with the local router's instances), semantic tokens, formatting with buf
// format, and the navigation features of register-navigation.ts. Each answers from the
// module's last good index mapped onto the buffers as they are now.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import {
  CodeLensRefreshRequest,
  MessageType,
  ShowMessageNotification,
  type Connection,
  type Range,
  type ServerCapabilities,
  type TextDocuments,
  type TextEdit,
} from "vscode-languageserver";
import type { TextDocument } from "vscode-languageserver-textdocument";
import type { Snapshot } from "../analysis/snapshot.js";
import type { ModuleState, ModuleStates } from "../module-states.js";
import { routerStateNotification } from "../protocol.js";
import { RouterState } from "../router-state.js";
import type { Session } from "../session.js";
import { completion } from "./completion.js";
import { formatDocument } from "./formatting.js";
import { definition, hover } from "./navigation.js";
import { codeLenses, documentSymbols } from "./outline.js";
import { navigationCapabilities, registerNavigation } from "./register-navigation.js";
import { semanticTokens, SEMANTIC_TOKENS_LEGEND } from "./semantic-tokens.js";

export const featureCapabilities: ServerCapabilities = {
  definitionProvider: true,
  hoverProvider: true,
  documentSymbolProvider: true,
  completionProvider: { triggerCharacters: [".", "(", " ", ":", '"', "/", "<", "=", "["] },
  codeLensProvider: { resolveProvider: false },
  ...navigationCapabilities,
  semanticTokensProvider: { legend: SEMANTIC_TOKENS_LEGEND, full: true, range: true },
  documentFormattingProvider: true,
  documentRangeFormattingProvider: true,
};

export interface FeatureHost {
  connection: Connection;
  documents: TextDocuments<TextDocument>;
  session: Session;
  states: ModuleStates;
  log: (message: string) => void;
  /** The last good index of every module of the workspace, compiling those not yet seen. */
  workspaceSnapshots: () => Promise<Snapshot[]>;
  /** Resolves once the module has an index, or no compile waits or runs for it. */
  indexed: (m: ModuleState) => Promise<void>;
}

export function registerFeatures(host: FeatureHost): void {
  const { connection, documents, session, states, log } = host;
  const router = new RouterState();

  async function context(uri: string) {
    const doc = documents.get(uri);
    const m = await states.forUri(uri);
    if (!doc || !m) return undefined;
    return { file: fileURLToPath(uri), text: doc.getText(), snapshot: states.live(m) };
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
    // VS Code keeps this answer until the text changes: wait for the module's first index.
    const m = await states.forUri(p.textDocument.uri);
    if (m) await host.indexed(m);
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
  // The lenses show the local router's instances; the extension tells us when they change.
  connection.onNotification(routerStateNotification, (params) => {
    router.update(params);
    if (session.can.refreshLenses) void connection.sendRequest(CodeLensRefreshRequest.type).catch(() => {});
  });

  connection.languages.semanticTokens.on(async (p) => {
    const c = await context(p.textDocument.uri);
    return c?.snapshot ? semanticTokens(c.snapshot, c.file, c.text) : { data: [] };
  });
  connection.languages.semanticTokens.onRange(async (p) => {
    const c = await context(p.textDocument.uri);
    return c?.snapshot ? semanticTokens(c.snapshot, c.file, c.text, p.range) : { data: [] };
  });

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
    const m = await states.forUri(e.document.uri);
    return m && (await session.settingsFor(m.module.folder)).format.onSave ? format(e.document.uri) : [];
  });

  registerNavigation(connection, {
    documents,
    snapshots: host.workspaceSnapshots,
    moduleOf: async (uri) => {
      const m = await states.forUri(uri);
      const snap = m?.snapshot;
      if (!snap) return m && {};
      const read = (file: string) => {
        try {
          return states.openText(file) ?? readFileSync(file, "utf8");
        } catch {
          return undefined;
        }
      };
      return { snapshot: snap, texts: { files: snap.compiled.importToFile, read, inWorkspace: (f: string) => session.inWorkspace(f) } };
    },
  });
}
