// The `grpcrouter` debug type. It has no debug adapter of its own: resolving a grpcrouter
// launch configuration generates the module's code, then turns the configuration into a
// Node one (VS Code's JavaScript debugger) that runs the router — `grpcrouter serve` on the
// module, or the user's own router program — so breakpoints in routing hooks work, and
// stopping the session stops the router. The admin port it is given is what the debug
// panel and the Router view watch.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import * as vscode from "vscode";
import { freePort } from "../router-process.js";

export const DEBUG_TYPE = "grpcrouter";

/** What a resolved configuration carries for the panel and the tree (under `__grpcrouter`). */
export interface RouterSessionInfo {
  root: string;
  address: string;
  adminUrl: string;
  openPanel: boolean;
}

export interface GrpcrouterLaunch extends vscode.DebugConfiguration {
  root?: string;
  out?: string;
  port?: number;
  adminPort?: number;
  program?: string;
  args?: string[];
  runtimeArgs?: string[];
  env?: Record<string, string>;
  generate?: boolean;
  openPanel?: boolean;
  noDebug?: boolean;
}

/** How to run the grpcrouter CLI from this extension: the bundle, or the sources in a checkout. */
export function cliCommand(extensionPath: string): { program: string; runtimeArgs: string[] } | undefined {
  const bundled = path.join(extensionPath, "server", "dist", "grpcrouter.js");
  if (existsSync(bundled)) return { program: bundled, runtimeArgs: [] };
  const source = path.join(extensionPath, "cli", "src", "main.ts");
  const tsx = path.join(extensionPath, "node_modules", "tsx", "dist", "loader.mjs");
  if (existsSync(source) && existsSync(tsx)) {
    return { program: source, runtimeArgs: ["--conditions=@grpcrouter/source", "--import", pathToFileURL(tsx).href] };
  }
  return undefined;
}

function substitute(value: string, folder: vscode.WorkspaceFolder | undefined): string {
  const ws = folder?.uri.fsPath ?? vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? "";
  return value.replace(/\$\{workspaceFolder\}/g, ws).replace(/\$\{workspaceFolderBasename\}/g, path.basename(ws));
}

/**
 * The buf binary the VSIX ships (per platform), for the generator of the server and the CLI,
 * which honours GRPCROUTER_BUF, unless the user set their own. A development checkout has
 * none there and finds buf in node_modules.
 */
export function bufEnv(extensionPath: string): Record<string, string> {
  const bundled = path.join(extensionPath, "server", "dist", "bin", process.platform === "win32" ? "buf.exe" : "buf");
  return !process.env.GRPCROUTER_BUF && existsSync(bundled) ? { GRPCROUTER_BUF: bundled } : {};
}

/** Runs `grpcrouter generate`; resolves to the error text, or undefined when it succeeded. */
function generate(
  cli: { program: string; runtimeArgs: string[] },
  root: string,
  out: string | undefined,
  env: Record<string, string>,
  log: vscode.OutputChannel,
): Promise<string | undefined> {
  const args = [...cli.runtimeArgs, cli.program, "generate", "--root", root, ...(out ? ["--out", out] : [])];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, ...env, ELECTRON_RUN_AS_NODE: "1" }, stdio: ["ignore", "pipe", "pipe"] });
    let text = "";
    const collect = (b: Buffer) => {
      text += b.toString("utf8");
      log.append(b.toString("utf8"));
    };
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    child.once("error", (e) => resolve(e.message));
    child.once("exit", (code) => resolve(code === 0 ? undefined : text.trim().split("\n").slice(-3).join(" ") || `grpcrouter generate exited with ${code}`));
  });
}

export class GrpcrouterConfigurationProvider implements vscode.DebugConfigurationProvider {
  constructor(
    private readonly extensionPath: string,
    private readonly log: vscode.OutputChannel,
  ) {}

  provideDebugConfigurations(): vscode.DebugConfiguration[] {
    return [{ type: DEBUG_TYPE, request: "launch", name: "Debug Router", root: "${workspaceFolder}" }];
  }

  async resolveDebugConfiguration(folder: vscode.WorkspaceFolder | undefined, config: GrpcrouterLaunch): Promise<vscode.DebugConfiguration | undefined | null> {
    // F5 without a launch.json: a router for the workspace's module.
    if (!config.type && !config.request && !config.name) {
      Object.assign(config, this.provideDebugConfigurations()[0]);
    }
    if (config.type !== DEBUG_TYPE) return config;
    const cli = cliCommand(this.extensionPath);
    if (!cli) {
      void vscode.window.showErrorMessage("gRPC Router: the grpcrouter CLI is missing from the extension; cannot start a router.");
      return undefined;
    }
    const root = path.resolve(substitute(config.root ?? "${workspaceFolder}", folder));
    if (!existsSync(root)) {
      void vscode.window.showErrorMessage(`gRPC Router: launch configuration "${config.name}": root ${root} does not exist.`);
      return undefined;
    }
    const out = config.out ? path.resolve(root, substitute(config.out, folder)) : undefined;
    if (config.generate !== false) {
      this.log.appendLine(`[debug] grpcrouter generate --root ${root}`);
      const failed = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: "gRPC Router: generating before launch" }, () =>
        generate(cli, root, out, bufEnv(this.extensionPath), this.log),
      );
      if (failed) {
        const choice = await vscode.window.showErrorMessage(`gRPC Router: generate failed: ${failed}`, "Show Output", "Launch Anyway");
        if (choice === "Show Output") this.log.show();
        if (choice !== "Launch Anyway") return undefined;
      }
    }
    const port = config.port && config.port > 0 ? config.port : await freePort();
    const adminPort = config.adminPort && config.adminPort > 0 ? config.adminPort : await freePort();
    const info: RouterSessionInfo = {
      root,
      address: `127.0.0.1:${port}`,
      adminUrl: `http://127.0.0.1:${adminPort}/`,
      openPanel: config.openPanel !== false,
    };
    const env = { ...bufEnv(this.extensionPath), ...(config.env ?? {}), GRPCROUTER_PORT: String(port), GRPCROUTER_ADMIN_PORT: String(adminPort) };
    const own = config.program ? path.resolve(root, substitute(config.program, folder)) : undefined;
    const node: vscode.DebugConfiguration = {
      type: "node",
      request: "launch",
      name: config.name,
      cwd: root,
      env,
      console: "internalConsole",
      outputCapture: "std",
      skipFiles: ["<node_internals>/**"],
      noDebug: config.noDebug,
      __grpcrouter: info,
      ...(own
        ? {
            program: own,
            args: config.args ?? [],
            runtimeArgs: config.runtimeArgs ?? (/\.[mc]?tsx?$/.test(own) ? ["--import", "tsx"] : []),
          }
        : {
            program: cli.program,
            runtimeArgs: [...cli.runtimeArgs, ...(config.runtimeArgs ?? [])],
            args: ["serve", "--root", root, ...(out ? ["--out", out] : []), "--port", String(port), "--admin-port", String(adminPort), ...(config.args ?? [])],
          }),
    };
    this.log.appendLine(`[debug] launching ${own ?? "grpcrouter serve"} (router ${info.address}, dashboard ${info.adminUrl})`);
    return node;
  }
}

/** The grpcrouter data of a session started from a grpcrouter configuration (top-level only). */
export function routerSessionInfo(session: vscode.DebugSession): RouterSessionInfo | undefined {
  const info = (session.configuration as { __grpcrouter?: RouterSessionInfo }).__grpcrouter;
  return info && !session.parentSession ? info : undefined;
}
