// The debug panel: the router dashboard's own page (runtime/src/admin/ui) in a webview, fed
// through postMessage by an admin event stream the extension host reads (see ui/sources.js
// for the protocol). While the panel is hidden its page is discarded and the stream closed;
// when it shows again the page asks for a resync and gets a snapshot that carries the
// router's recent history, so nothing seen before is lost and nothing is kept twice.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { DASHBOARD_ASSETS, dashboardWebviewHtml } from "@grpcrouter/runtime/dashboard-assets";
import * as vscode from "vscode";
import { AdminEventStream } from "../admin-client.js";

/**
 * Writes the dashboard's files (embedded in the runtime, the same the router serves) into
 * `dir`, which the webview may load from; returns `dir`. Files already current are left alone.
 */
export function writeUiFiles(dir: string): string {
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(DASHBOARD_ASSETS)) {
    const file = path.join(dir, name);
    let current: string | undefined;
    try {
      current = readFileSync(file, "utf8");
    } catch {
      current = undefined;
    }
    if (current !== text) writeFileSync(file, text);
  }
  return dir;
}

/** What the page posts (ui/sources.js documents the protocol). */
interface PageMessage {
  type?: string;
  fileName?: string;
  text?: string;
  id?: number;
  request?: unknown;
}

export class DebugPanel implements vscode.Disposable {
  static readonly viewType = "grpcrouter.debugPanel";
  #panel: vscode.WebviewPanel | undefined;
  #stream: AdminEventStream | undefined;
  #url: string | undefined;
  #title = "gRPC Router";

  /** `storageDir`: a folder of the extension's own (global storage) for the UI files. */
  constructor(private readonly storageDir: string) {}

  /** The dashboard URL of the router to watch (undefined: none runs). */
  setTarget(url: string | undefined, title?: string): void {
    this.#url = url;
    if (title) this.#title = title;
    if (this.#panel) this.#panel.title = this.#title;
    if (!url) {
      this.#stream?.close();
      this.#stream = undefined;
      void this.#panel?.webview.postMessage({ type: "status", state: "down", text: "the router stopped" });
    } else if (this.#panel?.visible) this.#watch();
  }

  get visible(): boolean {
    return this.#panel?.visible ?? false;
  }

  show(preserveFocus = true): void {
    if (this.#panel) {
      this.#panel.reveal(undefined, preserveFocus);
      return;
    }
    let dir: string;
    try {
      dir = writeUiFiles(path.join(this.storageDir, "dashboard-ui"));
    } catch (e) {
      void vscode.window.showErrorMessage(`gRPC Router: cannot prepare the debug panel: ${(e as Error).message}`);
      return;
    }
    const root = vscode.Uri.file(dir);
    const panel = vscode.window.createWebviewPanel(
      DebugPanel.viewType,
      this.#title,
      { viewColumn: vscode.ViewColumn.Beside, preserveFocus },
      { enableScripts: true, localResourceRoots: [root] },
    );
    panel.webview.html = dashboardWebviewHtml({ assetBase: panel.webview.asWebviewUri(root).toString(), cspSource: panel.webview.cspSource });
    panel.webview.onDidReceiveMessage((msg: PageMessage) => this.#onMessage(msg));
    panel.onDidChangeViewState(() => {
      // A hidden webview drops what it is sent: stop reading until its page asks again.
      if (!panel.visible) {
        this.#stream?.close();
        this.#stream = undefined;
      }
    });
    panel.onDidDispose(() => {
      this.#stream?.close();
      this.#stream = undefined;
      this.#panel = undefined;
    });
    this.#panel = panel;
  }

  #watch(): void {
    this.#stream?.close();
    this.#stream = undefined;
    const panel = this.#panel;
    if (!panel) return;
    if (!this.#url) {
      void panel.webview.postMessage({ type: "status", state: "down", text: "no router runs: start a grpcrouter debug session" });
      return;
    }
    this.#stream = new AdminEventStream({
      url: this.#url,
      messages: true,
      // The page reads proto3 JSON: events go to it as the router sent them, undecoded, in
      // the batches they came in (one message per batch: see ui/sources.js).
      onJsonBatch: (events) => void panel.webview.postMessage({ type: "events", events }),
      onState: (state, text) => void panel.webview.postMessage({ type: "status", state, text }),
    });
  }

  async #onMessage(msg: PageMessage): Promise<void> {
    switch (msg.type) {
      case "act":
      case "replay": {
        // The page's operator actions go to the dashboard's own endpoints, which check the
        // caller (loopback) and the request exactly as they do for the browser.
        const reply = await this.#post(msg.type === "act" ? "action" : "replay", msg.request);
        void this.#panel?.webview.postMessage({ type: "reply", id: msg.id, ...reply });
        return;
      }
      case "ready":
        return this.#watch();
      case "resync":
        return this.#stream ? this.#stream.resync() : this.#watch();
      case "copy":
        await vscode.env.clipboard.writeText(msg.text ?? "");
        return;
      case "export": {
        const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
        const name = msg.fileName ?? "grpcrouter-calls.jsonl";
        const target = await vscode.window.showSaveDialog({
          defaultUri: folder ? vscode.Uri.joinPath(folder, name) : undefined,
          filters: { "JSON Lines": ["jsonl"] },
        });
        if (!target) return;
        await writeFile(target.fsPath, msg.text ?? "");
        void vscode.window.showInformationMessage(`gRPC Router: calls exported to ${vscode.workspace.asRelativePath(target)}`);
        return;
      }
    }
  }

  async #post(endpoint: string, request: unknown): Promise<{ ok: true; result: unknown } | { ok: false; error: string }> {
    if (!this.#url) return { ok: false, error: "no router runs" };
    try {
      const res = await fetch(new URL(endpoint, this.#url), {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(request ?? {}),
      });
      const answer = (await res.json().catch(() => ({}))) as { error?: string };
      return res.ok ? { ok: true, result: answer } : { ok: false, error: answer.error ?? `HTTP ${res.status}` };
    } catch (e) {
      return { ok: false, error: `the router's dashboard did not answer: ${(e as Error).message}` };
    }
  }

  dispose(): void {
    this.#stream?.close();
    this.#panel?.dispose();
  }
}
