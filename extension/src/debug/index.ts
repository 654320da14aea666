// Wires the grpcrouter debug type, the debug panel and the Router view into the extension.
// activate() calls `activateDebug(context)` once; everything here is disposed with it.
import * as vscode from "vscode";
import { DEBUG_TYPE, GrpcrouterConfigurationProvider, routerSessionInfo } from "./launch.js";
import { AdminEventStream, ROUTER_STATE_KINDS, RouterState } from "../admin-client.js";
import { DebugPanel } from "./panel.js";
import { RouterTreeProvider } from "./tree.js";

export function activateDebug(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel("gRPC Router Debug");
  const model = new RouterState();
  const tree = new RouterTreeProvider(model);
  const panel = new DebugPanel(context.globalStorageUri.fsPath);
  let watched: { session: vscode.DebugSession | undefined; stream: AdminEventStream } | undefined;
  /** The router "Start Router" runs, watched whenever no debug session's router is. */
  let standing: { adminUrl: string; address: string } | undefined;

  /** Points the panel and the Router view at the dashboard of the router at `address`. */
  const watchRouter = (adminUrl: string, address: string, owner: vscode.DebugSession | undefined) => {
    watched?.stream.close();
    model.reset();
    // The tree needs the snapshot and instances only: no message events, nothing else decoded.
    const stream = new AdminEventStream({ url: adminUrl, messages: false, kinds: ROUTER_STATE_KINDS, onEvent: (ev) => model.apply(ev) });
    watched = { session: owner, stream };
    panel.setTarget(adminUrl, `Router ${address}`);
    void vscode.commands.executeCommand("setContext", "grpcrouter.routerRunning", true);
    log.appendLine(`[debug] watching ${adminUrl}`);
  };

  const stopWatching = () => {
    watched?.stream.close();
    watched = undefined;
    model.reset();
    panel.setTarget(undefined);
    void vscode.commands.executeCommand("setContext", "grpcrouter.routerRunning", false);
  };

  context.subscriptions.push(
    log,
    tree,
    panel,
    vscode.debug.registerDebugConfigurationProvider(DEBUG_TYPE, new GrpcrouterConfigurationProvider(context.extensionPath, log)),
    vscode.window.registerTreeDataProvider("grpcrouter.router", tree),
    vscode.debug.onDidStartDebugSession((session) => {
      const info = routerSessionInfo(session);
      if (!info) return;
      watchRouter(info.adminUrl, info.address, session);
      if (info.openPanel) panel.show(true);
    }),
    vscode.debug.onDidTerminateDebugSession((session) => {
      if (watched?.session !== session) return;
      stopWatching();
      if (standing) watchRouter(standing.adminUrl, standing.address, undefined);
    }),
    vscode.commands.registerCommand("grpcrouter.openDebugPanel", () => panel.show(false)),
    // For routers started otherwise (the "Start Router" command runs this with the router it
    // started): watch this one's dashboard (`http://127.0.0.1:<admin-port>/`, which `grpcrouter
    // serve` prints), or with no args stop watching it. A debug session's router comes first.
    vscode.commands.registerCommand("grpcrouter.watchRouter", (adminUrl?: string, address?: string) => {
      standing = adminUrl ? { adminUrl, address: address ?? adminUrl } : undefined;
      if (watched?.session) return;
      if (!standing) return watched ? stopWatching() : undefined;
      watchRouter(standing.adminUrl, standing.address, undefined);
    }),
    { dispose: () => watched?.stream.close() },
  );
}
