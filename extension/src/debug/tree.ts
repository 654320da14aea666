// The "Router" view in the Run and Debug side bar: services → instances of the router the
// current grpcrouter debug session runs, live from its admin event stream.
import * as vscode from "vscode";
import { connectionText, healthText, type Instance, type RouterState, type ServiceNode } from "../admin-client.js";

type Node = { kind: "service"; service: ServiceNode } | { kind: "instance"; instance: Instance };

export class RouterTreeProvider implements vscode.TreeDataProvider<Node>, vscode.Disposable {
  readonly #changed = new vscode.EventEmitter<Node | undefined>();
  readonly onDidChangeTreeData = this.#changed.event;
  readonly #sub: { dispose(): void };

  constructor(private readonly model: RouterState) {
    this.#sub = model.onChange(() => this.#changed.fire(undefined));
  }

  getChildren(node?: Node): Node[] {
    if (!node) return this.model.services().map((service) => ({ kind: "service", service }));
    if (node.kind === "service") return node.service.instances.map((instance) => ({ kind: "instance", instance }));
    return [];
  }

  getTreeItem(node: Node): vscode.TreeItem {
    if (node.kind === "service") {
      const s = node.service;
      const item = new vscode.TreeItem(s.name, vscode.TreeItemCollapsibleState.Expanded);
      item.id = `service:${s.name}`;
      item.description = s.instances.length === 1 ? "1 instance" : `${s.instances.length} instances`;
      item.iconPath = new vscode.ThemeIcon("symbol-interface", s.instances.length ? undefined : new vscode.ThemeColor("disabledForeground"));
      item.tooltip = new vscode.MarkdownString(`**${s.name}**\n\n${s.methods.map((m) => `- \`${m}\``).join("\n")}`);
      item.contextValue = "grpcrouter.service";
      return item;
    }
    const i = node.instance;
    const health = healthText(i.health);
    const item = new vscode.TreeItem(i.id, vscode.TreeItemCollapsibleState.None);
    item.id = `instance:${i.service}:${i.id}`;
    const load = i.maxConcurrentCalls ? `${i.inFlightCalls}/${i.maxConcurrentCalls}` : `${i.inFlightCalls}`;
    const connection = connectionText(i);
    item.description = [health, `${load} in flight`, connection.label, i.address].filter(Boolean).join(" · ");
    item.iconPath = new vscode.ThemeIcon(
      health === "serving" ? "pass" : health === "draining" ? "warning" : "error",
      new vscode.ThemeColor(health === "serving" ? "testing.iconPassed" : health === "draining" ? "editorWarning.foreground" : "errorForeground"),
    );
    const labels = Object.entries(i.labels).map(([k, v]) => `${k}=${v}`);
    item.tooltip = [
      `${i.id} (${i.service})`,
      `health: ${health}`,
      `streams: ${i.streams}`,
      labels.length ? `labels: ${labels.join(", ")}` : "",
      ...connection.details,
    ]
      .filter(Boolean)
      .join("\n");
    item.contextValue = "grpcrouter.instance";
    return item;
  }

  dispose(): void {
    this.#sub.dispose();
    this.#changed.dispose();
  }
}
