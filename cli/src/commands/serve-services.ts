// The one router of `grpcrouter serve` and the services it routes. A (re)loaded module is
// applied service by service: new services are added, services whose tunnel changed are
// replaced in place (their instances and calls in flight stay), services that left are
// removed (their instances drain). grpc.health.v1 follows each service's serving instances.
import {
  createRouter,
  type Router,
  type RouterHealth,
  type RouterOptions,
  type RouterServiceOptions,
  type ServiceSettings,
  type TunnelSpec,
} from "@grpcrouter/runtime";
import type { ServedModule } from "./serve-module.js";

export interface ModuleChanges {
  added: string[];
  replaced: string[];
  removed: string[];
}

export interface ServedServicesOptions {
  /** The router's options, except its services (they come from the module). */
  router: Omit<RouterOptions, "services" | "onServingChange">;
  health: RouterHealth;
  /** The --config settings of a service ({} without any). */
  settings: (service: string) => ServiceSettings;
  log: (line: string) => void;
  /** For messages about settings that cannot apply: the config file's name. */
  configName: string;
}

export class ServedServices {
  readonly router: Router;
  /** Service → its key (serve-module.ts): equal keys, same tunnel. */
  private readonly keys = new Map<string, string>();
  /** Removed services whose instances are still draining. */
  private readonly removing = new Set<Promise<void>>();

  constructor(private readonly options: ServedServicesOptions) {
    this.router = createRouter({
      ...options.router,
      services: [],
      // Only for services still served: a removed one has left the health service already.
      onServingChange: (service, serving) => {
        if (this.keys.has(service)) options.health.set(service, serving);
      },
    });
  }

  /** Routes `module`'s services: adds the new ones, replaces the changed ones, removes the rest. */
  apply(module: ServedModule, graceMs = 10_000): ModuleChanges {
    const changes: ModuleChanges = { added: [], replaced: [], removed: [] };
    for (const service of [...this.keys.keys()]) {
      if (module.serviceKeys.has(service)) continue;
      this.keys.delete(service);
      this.options.health.remove(service);
      const done = this.router.removeService(service, graceMs).catch((e: unknown) => this.options.log(`removing ${service}: ${String(e)}`));
      this.removing.add(done);
      void done.finally(() => this.removing.delete(done));
      changes.removed.push(service);
    }
    for (const spec of module.specs) {
      const service = spec.service.typeName;
      const key = module.serviceKeys.get(service)!;
      const known = this.keys.get(service);
      if (known === key) continue;
      this.keys.set(service, key);
      if (known === undefined) {
        this.route(spec, "addService");
        changes.added.push(service);
      } else {
        this.route(spec, "replaceService");
        changes.replaced.push(service);
      }
      this.options.health.set(service, this.router.hasServingInstance(service));
    }
    return changes;
  }

  /** The config changed: new settings for `service` (its instances and calls stay). */
  configure(service: string): void {
    try {
      this.router.configure(service, this.options.settings(service));
    } catch (e) {
      this.settingsFailed(service, e, "it keeps its previous settings");
    }
  }

  /** Drains the router (calls in flight get `graceMs`) and waits for removed services' instances. */
  async close(graceMs: number): Promise<void> {
    await this.router.close(graceMs);
    await Promise.all([...this.removing]);
  }

  /** Adds or replaces `spec`'s service with its --config settings (the defaults when they cannot apply). */
  private route(spec: TunnelSpec, how: "addService" | "replaceService"): void {
    const service = spec.service.typeName;
    try {
      this.router[how](withSettings(spec, this.options.settings(service)));
    } catch (e) {
      this.settingsFailed(service, e, "it runs with the default settings");
      this.router[how]({ tunnel: spec });
    }
  }

  /** Only reachable when a reload dropped a method the config limits: the config was checked
   *  against the module it was loaded with. */
  private settingsFailed(service: string, e: unknown, outcome: string): void {
    const message = (e as Error).message.replace(`${service}: `, "");
    this.options.log(`${this.options.configName}: services[${JSON.stringify(service)}]: ${message}; ${outcome}`);
  }
}

/** A service's options with its --config settings (`waitForReady` is a resilience setting). */
function withSettings(tunnel: TunnelSpec, settings: ServiceSettings): RouterServiceOptions {
  const { waitForReady, ...rest } = settings;
  const options: RouterServiceOptions = { tunnel, ...rest };
  if (waitForReady !== undefined) options.resilience = { waitForReady, ...rest.resilience };
  return options;
}
