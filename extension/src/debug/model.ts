// What the "Router" tree shows, kept from the admin event stream: the router's services and,
// under each, its registered instances. No vscode import, so it is tested in plain node.
import type { AdminEvent, AdminInstance } from "./sse.js";

export interface ServiceNode {
  name: string;
  methods: string[];
  instances: AdminInstance[];
}

export class RouterModel {
  #services = new Map<string, string[]>();
  #instances = new Map<string, AdminInstance>();
  routerAddress = "";
  readonly #listeners = new Set<() => void>();

  onChange(listener: () => void): { dispose(): void } {
    this.#listeners.add(listener);
    return { dispose: () => this.#listeners.delete(listener) };
  }

  /** Applies one admin Event; returns whether the tree changed. */
  apply(ev: AdminEvent): boolean {
    if (ev.snapshot) {
      this.routerAddress = ev.snapshot.routerAddress ?? "";
      this.#services = new Map((ev.snapshot.services ?? []).map((s) => [s.name, s.methods ?? []]));
      this.#instances = new Map((ev.snapshot.instances ?? []).map((i) => [key(i), i]));
    } else if (ev.instanceRegistered ?? ev.instanceChanged) {
      const i = (ev.instanceRegistered ?? ev.instanceChanged)!;
      this.#instances.set(key(i), i);
    } else if (ev.instanceDeregistered) {
      this.#instances.delete(key(ev.instanceDeregistered));
    } else return false;
    for (const l of this.#listeners) l();
    return true;
  }

  /** Forgets everything (the router stopped). */
  reset(): void {
    this.#services.clear();
    this.#instances.clear();
    this.routerAddress = "";
    for (const l of this.#listeners) l();
  }

  services(): ServiceNode[] {
    const names = new Set(this.#services.keys());
    for (const i of this.#instances.values()) names.add(i.service);
    return [...names].sort().map((name) => ({
      name,
      methods: this.#services.get(name) ?? [],
      instances: [...this.#instances.values()].filter((i) => i.service === name).sort((a, b) => a.id.localeCompare(b.id)),
    }));
  }
}

const key = (i: AdminInstance) => `${i.service}\u0000${i.id}`;

/** "serving" for "HEALTH_SERVING" (proto3 JSON of the enum); absent means serving. */
export function healthText(health: string | undefined): string {
  return (health ?? "HEALTH_SERVING").replace(/^HEALTH_/, "").toLowerCase().replace(/_/g, " ");
}
