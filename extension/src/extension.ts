// The VS Code side of grpcrouter: starts the bundled language server over node IPC, adds the
// commands, the router status bar item, and feeds the server what it cannot see itself (the
// state of the local router, for the code lenses).
import path from "node:path";
import * as vscode from "vscode";
// The server's own requests and notifications, typed once for both sides.
import { checkRequest, generatedNotification, generateRequest, modulesRequest, routerStateNotification } from "@grpcrouter/server/protocol";
import { DidSaveTextDocumentNotification, LanguageClient, TransportKind, type LanguageClientOptions, type ServerOptions } from "vscode-languageclient/node";
import { watchRouterState, type InstanceCounts } from "./admin-client.js";
import { RouterProcess, type RouterStatus } from "./router-process.js";
import { activateDebug } from "./debug/index.js";
import { bufEnv } from "./debug/launch.js";

let client: LanguageClient | undefined;
const router = new RouterProcess();

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel("gRPC Router", { log: true });
  context.subscriptions.push(output);
  activateDebug(context);

  const serverModule = context.asAbsolutePath(path.join("server", "dist", "server.js"));
  const buf = bufEnv(context.extensionPath);
  const env = { ...process.env, ...buf };
  const serverOptions: ServerOptions = {
    run: { module: serverModule, transport: TransportKind.ipc, options: { env } },
    debug: { module: serverModule, transport: TransportKind.ipc, options: { env, execArgv: ["--nolazy", "--inspect=6019"] } },
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ scheme: "file", language: "proto" }],
    synchronize: { configurationSection: "grpcrouter" },
    outputChannel: output,
    initializationOptions: { settings: vscode.workspace.getConfiguration("grpcrouter") },
  };
  client = new LanguageClient("grpcrouter", "gRPC Router", serverOptions, clientOptions);

  const status = vscode.window.createStatusBarItem("grpcrouter.router", vscode.StatusBarAlignment.Left, 10);
  status.name = "gRPC Router";
  context.subscriptions.push(status);
  // The server shows the router's state in code lenses; it learns it from us.
  let counts: InstanceCounts | undefined;
  const tellServer = () => {
    const s = router.current;
    if (!client?.isRunning()) return;
    void client
      .sendNotification(routerStateNotification, {
        running: s.state === "running",
        address: s.state === "running" ? s.address : undefined,
        instances: s.state === "running" ? counts : undefined,
      })
      .catch(() => {});
  };
  // The started router's instances, live from its dashboard's event stream (no polling).
  let watch: ReturnType<typeof watchRouterState> | undefined;
  const watchCounts = (adminUrl: string | undefined) => {
    watch?.close();
    watch = undefined;
    counts = undefined;
    if (!adminUrl) return;
    const w = (watch = watchRouterState(adminUrl));
    let last = "";
    w.state.onChange(() => {
      const c = w.state.counts();
      const key = JSON.stringify(c ?? null);
      if (key === last || watch !== w) return;
      last = key;
      counts = c;
      showStatus(router.current);
    });
  };
  context.subscriptions.push({ dispose: () => watchCounts(undefined) });
  const instancesText = () => {
    if (!counts) return "";
    const n = Object.values(counts).reduce((a, b) => a + b, 0);
    return ` · ${n} instance${n === 1 ? "" : "s"}`;
  };
  const showStatus = (s: RouterStatus) => {
    switch (s.state) {
      case "stopped":
        status.text = "$(debug-stop) Router: stopped";
        status.tooltip = "gRPC Router: no local router runs. Click to start one.";
        status.command = "grpcrouter.startRouter";
        break;
      case "starting":
        status.text = "$(loading~spin) Router: starting";
        status.tooltip = `gRPC Router: starting on port ${s.port}`;
        status.command = "grpcrouter.showOutput";
        break;
      case "running":
        status.text = `$(radio-tower) Router: ${s.address}${instancesText()}`;
        status.tooltip = `gRPC Router: running on ${s.address} (pid ${s.pid})${
          counts
            ? `; ${Object.entries(counts)
                .map(([svc, n]) => `${svc}: ${n}`)
                .join(", ")}`
            : ""
        }. Click to stop.`;
        status.command = "grpcrouter.stopRouter";
        break;
      case "failed":
        status.text = "$(error) Router: failed";
        status.tooltip = `gRPC Router: ${s.reason}`;
        status.command = "grpcrouter.showOutput";
        break;
    }
    // Only where it means something: a workspace with .proto files, or a router running.
    if (hasProtos || s.state !== "stopped") status.show();
    else status.hide();
    tellServer();
  };
  // Whether the workspace has .proto files (the extension also activates for debugging in any
  // folder); a created or deleted file updates it.
  let hasProtos = false;
  const findProtos = async () => {
    const found = await vscode.workspace.findFiles("**/*.proto", "**/node_modules/**", 1);
    hasProtos = found.length > 0 || vscode.workspace.textDocuments.some((d) => d.languageId === "proto");
    showStatus(router.current);
  };
  const protoFiles = vscode.workspace.createFileSystemWatcher("**/*.proto");
  context.subscriptions.push(
    protoFiles,
    protoFiles.onDidCreate(() => {
      hasProtos = true;
      showStatus(router.current);
    }),
    protoFiles.onDidDelete(() => void findProtos()),
    vscode.workspace.onDidChangeWorkspaceFolders(() => void findProtos()),
  );
  context.subscriptions.push(
    router.onChange((s) => {
      const adminUrl = s.state === "running" ? s.adminUrl : undefined;
      watchCounts(adminUrl);
      // The Router view and the debug panel show it too, unless a debug session's router runs.
      if (adminUrl || s.state !== "starting")
        void vscode.commands.executeCommand("grpcrouter.watchRouter", adminUrl, s.state === "running" ? s.address : undefined);
      showStatus(s);
    }),
  );
  showStatus(router.current);
  void findProtos();

  const activeProtoUri = () => {
    const doc = vscode.window.activeTextEditor?.document;
    return doc?.languageId === "proto" && doc.uri.scheme === "file" ? doc.uri.toString() : undefined;
  };
  const uriArg = (arg: unknown) => (typeof arg === "string" ? arg : arg instanceof vscode.Uri ? arg.toString() : activeProtoUri());

  context.subscriptions.push(
    vscode.commands.registerCommand("grpcrouter.generate", async (arg?: unknown) => {
      const results = await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: "gRPC Router: generating" }, () =>
        client!.sendRequest(generateRequest, { uri: uriArg(arg) }),
      );
      if (results.length === 0) return void vscode.window.showWarningMessage("gRPC Router: no proto module found to generate.");
      const failed = results.filter((r) => !r.ok && !r.cancelled);
      const text = results.map((r) => r.message).join("; ");
      if (failed.length)
        void vscode.window
          .showErrorMessage(`gRPC Router: ${text}`, "Show Problems")
          .then((a) => a && vscode.commands.executeCommand("workbench.actions.view.problems"));
      else void vscode.window.showInformationMessage(`gRPC Router: ${text}`);
    }),
    vscode.commands.registerCommand("grpcrouter.check", async (arg?: unknown) => {
      const results = await client!.sendRequest(checkRequest, { uri: uriArg(arg) });
      const bad = results.filter((r) => r.stale.length || r.errors.length);
      if (!bad.length) return void vscode.window.showInformationMessage("gRPC Router: generated code is up to date.");
      for (const r of bad) {
        output.warn(`check ${r.root}: ${r.errors.length} errors, ${r.stale.length} stale: ${[...r.errors, ...r.stale].join(", ")}`);
      }
      void vscode.window
        .showWarningMessage(
          `gRPC Router: ${bad.map((r) => `${path.basename(r.out)}: ${r.stale.length} stale file(s), ${r.errors.length} error(s)`).join("; ")}`,
          "Generate",
        )
        .then((a) => a && vscode.commands.executeCommand("grpcrouter.generate"));
    }),
    vscode.commands.registerCommand("grpcrouter.startRouter", async (arg?: unknown) => {
      const modules = await client!.sendRequest(modulesRequest, { uri: uriArg(arg) });
      const mod = modules[0];
      const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
      const root = mod?.root ?? folder;
      if (!root) return void vscode.window.showErrorMessage("gRPC Router: open a folder with .proto files to start a router.");
      const port = vscode.workspace.getConfiguration("grpcrouter").get<number>("router.port", 0);
      output.info(`starting a router for ${root} on port ${port || "(any free)"}`);
      const s = await router.start({
        cli: context.asAbsolutePath(path.join("server", "dist", "grpcrouter.js")),
        root,
        out: mod?.out,
        port,
        adminPort: vscode.workspace.getConfiguration("grpcrouter").get<number>("router.adminPort", 0),
        cwd: mod?.folder ?? root,
        log: (line) => output.info(line),
        env: buf,
      });
      if (s.state === "failed") void vscode.window.showErrorMessage(`gRPC Router: ${s.reason}`, "Show Output").then((a) => a && output.show());
    }),
    vscode.commands.registerCommand("grpcrouter.stopRouter", () => router.stop()),
    vscode.commands.registerCommand("grpcrouter.showOutput", () => output.show()),
  );

  client.onNotification(generatedNotification, (s) => {
    if (s.trigger !== "save") return;
    // A short summary where the eye is, without a notification toast on every save.
    vscode.window.setStatusBarMessage(`$(check) gRPC Router: ${s.message}`, 5000);
  });

  // The client listens for saves only once it runs; a save while the server starts (seconds on
  // a loaded machine, right when a user opens a fresh workspace and saves) would be lost and
  // the first save would not generate. Remember those saves and hand them over once it runs.
  const savedWhileStarting = new Set<string>();
  const earlySaves = vscode.workspace.onDidSaveTextDocument((d) => {
    if (d.languageId === "proto" && d.uri.scheme === "file") savedWhileStarting.add(d.uri.toString());
  });
  try {
    await client.start();
  } finally {
    earlySaves.dispose();
  }
  // A save seen by both (as start() ended) generates twice; the second cancels the first.
  for (const uri of savedWhileStarting) void client.sendNotification(DidSaveTextDocumentNotification.type, { textDocument: { uri } }).catch(() => {});
  tellServer();
}

export async function deactivate(): Promise<void> {
  router.stop();
  await client?.stop();
}
