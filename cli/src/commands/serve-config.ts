// `grpcrouter serve --config FILE`: the router settings per service, CORS and client
// authorization, loaded whole and validated before anything changes. A bad file at start
// fails before anything listens; a bad edit later keeps the running settings.
import path from "node:path";
import { checkRouterConfig, clientAuthorizer, loadRouterConfig, settingsFor, type ClientAuthorizer, type RouterConfig } from "@grpcrouter/runtime";

export interface ConfigChange {
  /** Services whose settings changed (configure starts their rate-limit buckets afresh). */
  services: string[];
  cors: boolean;
  clientAuth: boolean;
}

export class ServeConfig {
  /** What the file says now ({ services: {} } without a file). */
  current: RouterConfig = { services: {} };
  clientAuth: ClientAuthorizer | undefined;

  constructor(
    /** Absolute path; undefined: no config file. */
    readonly file: string | undefined,
    /** The file as messages name it (relative to the working directory). */
    readonly name: string,
    private readonly log: (line: string) => void,
  ) {}

  /** Loads the file at start: throws (naming the file) when it is invalid. */
  async load(served: ReadonlyArray<{ name: string; methods: readonly string[] }>): Promise<void> {
    if (!this.file) return;
    const config = await loadRouterConfig(this.file, this.name);
    for (const note of checkRouterConfig(config, served, this.name)) this.log(note);
    this.clientAuth = this.authorizerFor(config);
    this.current = config;
  }

  /**
   * Loads the file again: what changed, or undefined when it is invalid (logged; the running
   * settings stay) or unchanged.
   */
  async reload(served: ReadonlyArray<{ name: string; methods: readonly string[] }>, routed: readonly string[]): Promise<ConfigChange | undefined> {
    let next: RouterConfig;
    let auth: ClientAuthorizer | undefined;
    try {
      next = await loadRouterConfig(this.file!, this.name);
      for (const note of checkRouterConfig(next, served, this.name)) this.log(note);
      auth = this.authorizerFor(next);
    } catch (e) {
      this.log((e as Error).message);
      this.log(`config reload failed; still using the previous configuration of ${this.name}`);
      return undefined;
    }
    const previous = this.current;
    if (same(next, previous)) return undefined;
    this.current = next;
    const clientAuth = !same(previous.clientAuth, next.clientAuth);
    if (clientAuth) this.clientAuth = auth;
    return {
      services: routed.filter((s) => !same(settingsFor(previous, s), settingsFor(next, s))),
      cors: !same(previous.cors, next.cors),
      clientAuth,
    };
  }

  settings(service: string) {
    return settingsFor(this.current, service);
  }

  /** The config's client authorization; a JWKS file is relative to the config file. Throws naming the file. */
  private authorizerFor(config: RouterConfig): ClientAuthorizer | undefined {
    if (!config.clientAuth) return undefined;
    const dir = this.file ? path.dirname(this.file) : process.cwd();
    const jwks = config.clientAuth.jwks?.file ? { file: path.resolve(dir, config.clientAuth.jwks.file) } : config.clientAuth.jwks;
    try {
      return clientAuthorizer({ ...config.clientAuth, ...(jwks ? { jwks } : {}) });
    } catch (e) {
      throw new Error(`${this.name}: ${(e as Error).message}`);
    }
  }
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
