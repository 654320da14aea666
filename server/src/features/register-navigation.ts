// Registers the navigation, rename, import and structure features on the connection, so
// register-features.ts only names them. Each answers from the module's last good compile and
// the text of the files as they are now.
import { fileURLToPath } from "node:url";
import { ErrorCodes, ResponseError, type Connection, type ServerCapabilities, type TextDocuments } from "vscode-languageserver";
import type { TextDocument } from "vscode-languageserver-textdocument";
import type { Snapshot } from "../analysis/snapshot.js";
import { CODE_ACTION_KINDS, codeActions } from "./code-actions.js";
import { documentHighlights, prepareRename, references, rename, RenameError, type ModuleTexts } from "./references.js";
import { SIGNATURE_TRIGGERS, signatureHelp } from "./signature-help.js";
import { documentLinks, foldingRanges, selectionRanges } from "./structure.js";
import { workspaceSymbols } from "./workspace-symbols.js";

export const navigationCapabilities: ServerCapabilities = {
  referencesProvider: true,
  documentHighlightProvider: true,
  renameProvider: { prepareProvider: true },
  workspaceSymbolProvider: true,
  foldingRangeProvider: true,
  documentLinkProvider: { resolveProvider: false },
  selectionRangeProvider: true,
  codeActionProvider: { codeActionKinds: CODE_ACTION_KINDS },
  signatureHelpProvider: { triggerCharacters: SIGNATURE_TRIGGERS, retriggerCharacters: [" "] },
};

export interface NavigationHost {
  documents: TextDocuments<TextDocument>;
  /** The last good compile of the module a document belongs to, and its files' texts. */
  moduleOf(uri: string): Promise<{ snapshot?: Snapshot; texts?: ModuleTexts } | undefined>;
  /** The last good compiles of every module of the workspace. */
  snapshots(): Promise<Snapshot[]>;
}

export function registerNavigation(connection: Connection, host: NavigationHost): void {
  const { documents } = host;
  async function at(uri: string) {
    const doc = documents.get(uri);
    if (!doc || !uri.startsWith("file:")) return undefined;
    const m = await host.moduleOf(uri);
    return m && { ...m, text: doc.getText(), file: fileURLToPath(uri) };
  }
  const renameFailure = (e: unknown) => {
    if (e instanceof RenameError) return new ResponseError(ErrorCodes.InvalidRequest, e.message);
    throw e;
  };

  connection.onReferences(async (p) => {
    const c = await at(p.textDocument.uri);
    return c?.snapshot && c.texts ? references(c.snapshot, c.texts, c.text, p.position, p.context.includeDeclaration) : [];
  });
  connection.onDocumentHighlight(async (p) => {
    const c = await at(p.textDocument.uri);
    return c?.snapshot ? documentHighlights(c.snapshot, c.text, p.position) : [];
  });
  connection.onPrepareRename(async (p) => {
    const c = await at(p.textDocument.uri);
    if (!c?.snapshot || !c.texts) return null;
    try {
      return prepareRename(c.snapshot, c.texts, c.text, p.position) ?? null;
    } catch (e) {
      return renameFailure(e);
    }
  });
  connection.onRenameRequest(async (p) => {
    const c = await at(p.textDocument.uri);
    if (!c?.snapshot || !c.texts) return null;
    try {
      return rename(c.snapshot, c.texts, c.text, p.position, p.newName) ?? null;
    } catch (e) {
      return renameFailure(e);
    }
  });
  connection.onWorkspaceSymbol(async (p) => workspaceSymbols(await host.snapshots(), p.query));
  connection.onFoldingRanges((p) => {
    const doc = documents.get(p.textDocument.uri);
    return doc ? foldingRanges(doc.getText()) : [];
  });
  connection.onSelectionRanges((p) => {
    const doc = documents.get(p.textDocument.uri);
    return doc ? selectionRanges(doc.getText(), p.positions) : [];
  });
  connection.onDocumentLinks(async (p) => {
    const c = await at(p.textDocument.uri);
    return c ? documentLinks(c.snapshot, c.text) : [];
  });
  connection.onCodeAction(async (p) => {
    const c = await at(p.textDocument.uri);
    return c ? codeActions(c.snapshot, c.file, p.textDocument.uri, c.text, p.range, p.context) : [];
  });
  connection.onSignatureHelp(async (p) => {
    const c = await at(p.textDocument.uri);
    return c ? (signatureHelp(c.snapshot, c.text, p.position) ?? null) : null;
  });
}
