// The router's configuration file (`grpcrouter serve --config FILE`): per service, and a
// "*" default for every service, the balancer, resilience settings, wait-for-ready and
// rate limits. JSON; validated as a whole before any of it is used, with errors that name
// the file and the field: `router.json: services["demo.v1.Echo"].balancer.strategy: …`.
import { readFile } from "node:fs/promises";
import { BalancerConfigError, parseBalancerConfig, type BalancerConfig } from "../balancer/index.js";
import { resolveResilienceOptions, ResilienceConfigError, type ResilienceOptions } from "../resilience/index.js";
import { parseRateLimits, RateLimitConfigError, type RateLimitOptions } from "../tunnel/rate-limit.js";
import type { ServiceSettings } from "../tunnel/router/router.js";
import { parseCorsOptions, type CorsOptions } from "../tunnel/http2/web-cors.js";
import type { ClientAuthConfig, ClientRule } from "../auth/client-auth.js";

/** Settings of one service (or of "*", the default of every service). */
export interface ServiceConfig {
  balancer?: BalancerConfig;
  resilience?: ResilienceOptions;
  waitForReady?: ResilienceOptions["waitForReady"];
  rateLimit?: RateLimitOptions;
}

export interface RouterConfig {
  /** Keyed by fully-qualified service name ("demo.v1.Echo") or "*". */
  services: Record<string, ServiceConfig>;
  /** CORS of gRPC-Web and Connect calls from browsers (grpc-web). */
  cors?: CorsOptions;
  /** Client authorization per service and method (auth/client-auth.ts); absent: every client may call. */
  clientAuth?: ClientAuthConfig;
}

/** A config problem; `message` starts with the file (when known) and the field. */
export class RouterConfigError extends Error {
  constructor(
    readonly path: string,
    readonly problem: string,
    readonly source?: string,
  ) {
    super(`${source ? source + ": " : ""}${path ? path + ": " : ""}${problem}`);
    this.name = "RouterConfigError";
  }
}

const SERVICE_FIELDS = ["balancer", "resilience", "waitForReady", "rateLimit"] as const;
const RESILIENCE_FIELDS: Record<string, readonly string[] | undefined> = {
  heartbeatTimeoutMs: undefined,
  maxConcurrentCallsPerInstance: undefined,
  maxPendingPerInstance: undefined,
  outlier: ["consecutiveFailures", "failureCodes", "baseEjectionMs", "maxEjectionMs", "maxEjectionPercent"],
  waitForReady: ["maxWaitMs", "maxWaiting"],
  retry: ["retryOn", "maxAttempts", "maxUndeliveredRetries", "initialBackoffMs", "maxBackoffMs", "backoffMultiplier", "budget"],
};
const BUDGET_FIELDS = ["ratio", "minRetriesPerSecond", "windowMs"];

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

class Parser {
  constructor(private readonly source: string | undefined) {}

  fail(path: string, problem: string): never {
    throw new RouterConfigError(path, problem, this.source);
  }

  onlyFields(obj: Record<string, unknown>, path: string, allowed: readonly string[]): void {
    for (const k of Object.keys(obj)) if (!allowed.includes(k)) this.fail(`${path}.${k}`, `unknown field (allowed here: ${allowed.join(", ")})`);
  }

  object(v: unknown, path: string, what: string): Record<string, unknown> {
    if (!isObject(v)) this.fail(path, `must be ${what}, got ${Array.isArray(v) ? "an array" : JSON.stringify(v)}`);
    return v;
  }

  /** The numbers and codes are checked by resolveResilienceOptions; this checks the shape. */
  resilience(v: unknown, path: string): ResilienceOptions {
    const o = this.object(v, path, "an object");
    this.onlyFields(o, path, Object.keys(RESILIENCE_FIELDS));
    for (const [k, fields] of Object.entries(RESILIENCE_FIELDS)) {
      const sub = o[k];
      if (fields === undefined || sub === undefined || (k === "waitForReady" && typeof sub === "boolean")) continue;
      const p = `${path}.${k}`;
      this.onlyFields(this.object(sub, p, k === "waitForReady" ? "true, false or an object" : "an object"), p, fields);
      if (k === "retry" && (sub as Record<string, unknown>).budget !== undefined) {
        this.onlyFields(this.object((sub as Record<string, unknown>).budget, `${p}.budget`, "an object"), `${p}.budget`, BUDGET_FIELDS);
      }
    }
    this.checked(() => resolveResilienceOptions(o as ResilienceOptions, path));
    return o as ResilienceOptions;
  }

  waitForReady(v: unknown, path: string): ResilienceOptions["waitForReady"] {
    if (typeof v === "boolean") return v;
    const o = this.object(v, path, "true, false or an object {maxWaitMs?, maxWaiting?}");
    this.onlyFields(o, path, ["maxWaitMs", "maxWaiting"]);
    // resolveResilienceOptions names `${root}.waitForReady.…`: give it the service's path.
    this.checked(() => resolveResilienceOptions({ waitForReady: o }, path.slice(0, -".waitForReady".length)));
    return o;
  }

  /** Runs another module's validation, turning its field-named error into ours. */
  checked<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (e instanceof ResilienceConfigError || e instanceof RateLimitConfigError || e instanceof BalancerConfigError) this.fail(e.path, e.problem);
      throw e;
    }
  }

  service(v: unknown, path: string, isDefault: boolean): ServiceConfig {
    const o = this.object(v, path, `an object with any of ${SERVICE_FIELDS.join(", ")}`);
    this.onlyFields(o, path, SERVICE_FIELDS);
    const out: ServiceConfig = {};
    if (o.balancer !== undefined) out.balancer = this.checked(() => parseBalancerConfig(o.balancer, { path: `${path}.balancer` }));
    if (o.resilience !== undefined) out.resilience = this.resilience(o.resilience, `${path}.resilience`);
    if (o.waitForReady !== undefined) out.waitForReady = this.waitForReady(o.waitForReady, `${path}.waitForReady`);
    if (o.rateLimit !== undefined) {
      out.rateLimit = this.checked(() => parseRateLimits(o.rateLimit, `${path}.rateLimit`));
      if (isDefault && out.rateLimit.methods)
        this.fail(`${path}.rateLimit.methods`, `per-method limits belong under a named service (services["demo.v1.Echo"].rateLimit.methods)`);
    }
    return out;
  }
}

/**
 * Validates a parsed config file. `source` (the file name) starts every error message.
 * Service names are not checked against what is served: a config may name services a
 * module does not have (yet).
 */
export function parseRouterConfig(value: unknown, source?: string): RouterConfig {
  const p = new Parser(source);
  const top = p.object(value, "", `an object {"services": {…}}`);
  p.onlyFields(top, "config", ["services", "cors", "clientAuth"]);
  const clientAuth = top.clientAuth === undefined ? undefined : parseClientAuth(p, top.clientAuth);
  const services: Record<string, ServiceConfig> = {};
  if (top.services !== undefined) {
    const s = p.object(top.services, "services", `an object of service name ("demo.v1.Echo", or "*" for every service) → settings`);
    for (const [name, v] of Object.entries(s)) {
      if (name !== "*" && !/^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$/.test(name))
        p.fail(`services[${JSON.stringify(name)}]`, `not a fully-qualified service name (e.g. "demo.v1.Echo") or "*"`);
      services[name] = p.service(v, `services[${JSON.stringify(name)}]`, name === "*");
    }
  }
  return {
    services,
    ...(clientAuth ? { clientAuth } : {}),
    // grpc-web: browsers' CORS
    ...(top.cors !== undefined ? { cors: parseCorsOptions(top.cors, (path, problem) => p.fail(path, problem)) } : {}),
  };
}

/** The shape of `clientAuth`; keys are read (and checked) when the authorizer is built. */
function parseClientAuth(p: Parser, v: unknown): ClientAuthConfig {
  const o = p.object(v, "clientAuth", "an object");
  p.onlyFields(o, "clientAuth", ["jwks", "issuer", "audience", "services"]);
  const str = (x: unknown, path: string) => {
    if (typeof x !== "string" || x === "") p.fail(path, `must be a non-empty string, got ${JSON.stringify(x)}`);
    return x;
  };
  const strs = (x: unknown, path: string) => {
    if (!Array.isArray(x) || x.length === 0) p.fail(path, `must be a non-empty list of strings`);
    return x.map((e, i) => str(e, `${path}[${i}]`));
  };
  const out: ClientAuthConfig = { services: {} };
  if (o.jwks !== undefined) {
    const j = p.object(o.jwks, "clientAuth.jwks", `an object {"file": …} or {"url": …}`);
    p.onlyFields(j, "clientAuth.jwks", ["file", "url"]);
    if ((j.file === undefined) === (j.url === undefined)) p.fail("clientAuth.jwks", `give "file" or "url"`);
    out.jwks = j.file !== undefined ? { file: str(j.file, "clientAuth.jwks.file") } : { url: str(j.url, "clientAuth.jwks.url") };
  }
  if (o.issuer !== undefined) out.issuer = str(o.issuer, "clientAuth.issuer");
  if (o.audience !== undefined) out.audience = str(o.audience, "clientAuth.audience");
  const services = p.object(o.services ?? {}, "clientAuth.services", 'an object of service name (or "*") → rules');
  for (const [name, rules] of Object.entries(services)) {
    const path = `clientAuth.services[${JSON.stringify(name)}]`;
    if (!Array.isArray(rules)) p.fail(path, "must be a list of rules");
    out.services[name] = rules.map((r, i) => {
      const rp = `${path}[${i}]`;
      const ro = p.object(r, rp, `a rule {"methods"?, "certificates"?, "jwt"?}`);
      p.onlyFields(ro, rp, ["methods", "certificates", "jwt"]);
      if (ro.certificates === undefined && ro.jwt === undefined) p.fail(rp, `a rule needs "certificates" or "jwt" (whom it admits)`);
      const rule: ClientRule = {};
      if (ro.methods !== undefined) rule.methods = strs(ro.methods, `${rp}.methods`);
      if (ro.certificates !== undefined) rule.certificates = strs(ro.certificates, `${rp}.certificates`);
      if (ro.jwt !== undefined) {
        const jo = p.object(ro.jwt, `${rp}.jwt`, `an object {"subjects"?, "scopes"?}`);
        p.onlyFields(jo, `${rp}.jwt`, ["subjects", "scopes"]);
        rule.jwt = {};
        if (jo.subjects !== undefined) rule.jwt.subjects = strs(jo.subjects, `${rp}.jwt.subjects`);
        if (jo.scopes !== undefined) rule.jwt.scopes = strs(jo.scopes, `${rp}.jwt.scopes`);
      }
      return rule;
    });
  }
  if (Object.values(out.services).some((rs) => rs.some((r) => r.jwt)) && !out.jwks)
    p.fail("clientAuth.jwks", 'jwt rules need a JWKS: {"file": …} or {"url": …}');
  return out;
}

/** Parses the text of a JSON config file; syntax errors give the line and column. */
export function parseRouterConfigText(text: string, source?: string): RouterConfig {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    let msg = (e as Error).message;
    const m = /at position (\d+)/.exec(msg);
    if (m && !/line \d+/.test(msg)) {
      const before = text.slice(0, Number(m[1]));
      const line = before.split("\n").length;
      msg += ` (line ${line} column ${Number(m[1]) - before.lastIndexOf("\n")})`;
    }
    throw new RouterConfigError("", `not valid JSON: ${msg}`, source);
  }
  return parseRouterConfig(value, source);
}

/** Reads and validates a config file. */
export async function loadRouterConfig(file: string, displayName = file): Promise<RouterConfig> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    throw new RouterConfigError("", `cannot read it: ${(e as Error).message}`, displayName);
  }
  return parseRouterConfigText(text, displayName);
}

/**
 * The settings of one service for Router.configure / createRouter: the "*" entry, then the
 * service's own entry; each field the service names replaces the default's field whole.
 */
export function settingsFor(config: RouterConfig, service: string): ServiceSettings {
  const merged: ServiceConfig = { ...config.services["*"], ...config.services[service] };
  const out: ServiceSettings = {};
  if (merged.balancer !== undefined) out.balancer = merged.balancer;
  if (merged.resilience !== undefined) out.resilience = merged.resilience;
  if (merged.waitForReady !== undefined) out.waitForReady = merged.waitForReady;
  if (merged.rateLimit !== undefined) out.rateLimit = merged.rateLimit;
  return out;
}

/**
 * Checks a config against the services actually served: per-method limits must name
 * methods of their service. Returns notes about services the config names but nobody
 * serves (not errors: a module may gain them later).
 */
export function checkRouterConfig(config: RouterConfig, services: ReadonlyArray<{ name: string; methods: readonly string[] }>, source?: string): string[] {
  const notes: string[] = [];
  for (const [name, s] of Object.entries(config.services)) {
    if (name === "*") continue;
    const served = services.find((x) => x.name === name);
    if (!served) {
      notes.push(
        `${source ? source + ": " : ""}services[${JSON.stringify(name)}]: no such service is served (${services.map((x) => x.name).join(", ") || "none"}); its settings wait for it`,
      );
      continue;
    }
    for (const m of Object.keys(s.rateLimit?.methods ?? {})) {
      if (!served.methods.includes(m)) {
        throw new RouterConfigError(
          `services[${JSON.stringify(name)}].rateLimit.methods.${m}`,
          `no method ${JSON.stringify(m)} in ${name} (one of ${served.methods.join(", ")})`,
          source,
        );
      }
    }
  }
  return notes;
}
