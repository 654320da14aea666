// The JSON-able balancer configuration (config files, proto options) and its validation.
import { Balancer as BalancerEnum } from "../gen/grpcrouter/v1/options_pb.js";
import type { LabelSource, SubsetFallback } from "./subset.js";

export type BalancerConfig =
  | { strategy: "round_robin" }
  | { strategy: "weighted_round_robin" }
  | { strategy: "least_outstanding" }
  | {
      strategy: "consistent_hash";
      /** Ring points per unit of weight (default 100). */
      virtualNodes?: number;
      /** c = 1+ε of bounded loads (default 1.25); must be > 1. */
      loadFactor?: number;
      /** For calls without a routing key (default round robin). */
      withoutKey?: BalancerConfig;
    }
  | {
      strategy: "subset";
      selector: Record<string, LabelSource>;
      fallback?: SubsetFallback;
      onMissing?: SubsetFallback;
      inner?: BalancerConfig;
    }
  | { strategy: "split"; splits: { labels: Record<string, string>; percent: number }[]; inner?: BalancerConfig }
  | { strategy: "pin"; metadataKey: string; fallback?: SubsetFallback; inner?: BalancerConfig }
  | {
      strategy: "locality";
      /** The router's zone and region; default GRPCROUTER_ZONE / GRPCROUTER_REGION of its environment. */
      zone?: string;
      region?: string;
      /** Instance labels holding the zone and region (default "zone", "region"). */
      zoneLabel?: string;
      regionLabel?: string;
      /** Envoy's overprovisioning factor (default 1.4), ≥ 1. */
      overprovisioning?: number;
      inner?: BalancerConfig;
    }
  | { strategy: "custom"; name: string };

export type StrategyName = BalancerConfig["strategy"];

/** A config error that names the offending field, e.g. `balancer.splits[1].percent`. */
export class BalancerConfigError extends Error {
  constructor(
    /** Dotted path of the field, for tools that map it back to a file line. */
    readonly path: string,
    readonly problem: string,
    source?: string,
  ) {
    super(`${source ? source + ": " : ""}${path}: ${problem}`);
    this.name = "BalancerConfigError";
  }
}

const STRATEGIES: readonly StrategyName[] = [
  "round_robin",
  "weighted_round_robin",
  "least_outstanding",
  "consistent_hash",
  "subset",
  "split",
  "pin",
  "locality",
  "custom",
];

/** The options.proto enum as a config; UNSPECIFIED means round robin. */
export function balancerConfigFromProto(value: BalancerEnum): BalancerConfig {
  switch (value) {
    case BalancerEnum.UNSPECIFIED:
    case BalancerEnum.ROUND_ROBIN:
      return { strategy: "round_robin" };
    case BalancerEnum.WEIGHTED_ROUND_ROBIN:
      return { strategy: "weighted_round_robin" };
    case BalancerEnum.LEAST_OUTSTANDING:
      return { strategy: "least_outstanding" };
    case BalancerEnum.CONSISTENT_HASH:
      return { strategy: "consistent_hash" };
    default:
      throw new BalancerConfigError("balancer", `unknown Balancer enum value ${String(value)}`);
  }
}

/** Accepts "round_robin", "ROUND_ROBIN" or "BALANCER_ROUND_ROBIN" (the proto enum name). */
function strategyFromName(name: string): StrategyName | undefined {
  const n = name.toLowerCase().replace(/^balancer_/, "");
  if (n === "unspecified") return "round_robin";
  return (STRATEGIES as readonly string[]).includes(n) ? (n as StrategyName) : undefined;
}

type Json = unknown;

function isObject(v: Json): v is Record<string, Json> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function describe(v: Json): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "object") return "an object";
  return `${typeof v} ${String(v)}`;
}

class Parser {
  constructor(private readonly source: string | undefined) {}

  fail(path: string, problem: string): never {
    throw new BalancerConfigError(path, problem, this.source);
  }

  onlyFields(obj: Record<string, Json>, path: string, allowed: readonly string[]): void {
    for (const k of Object.keys(obj)) {
      if (!allowed.includes(k)) this.fail(`${path}.${k}`, `unknown field (allowed here: ${allowed.join(", ")})`);
    }
  }

  string(v: Json, path: string): string {
    if (typeof v !== "string" || v === "") this.fail(path, `must be a non-empty string, got ${describe(v)}`);
    return v;
  }

  fallback(v: Json, path: string): SubsetFallback | undefined {
    if (v === undefined) return undefined;
    if (v !== "fail" && v !== "any") this.fail(path, `must be "fail" or "any", got ${describe(v)}`);
    return v;
  }

  labels(v: Json, path: string): Record<string, string> {
    if (!isObject(v)) this.fail(path, `must be an object of label → value, got ${describe(v)}`);
    const out: Record<string, string> = {};
    for (const [k, val] of Object.entries(v)) {
      if (typeof val !== "string") this.fail(`${path}.${k}`, `must be a string, got ${describe(val)}`);
      out[k] = val;
    }
    if (Object.keys(out).length === 0) this.fail(path, "must name at least one label");
    return out;
  }

  config(v: Json, path: string): BalancerConfig {
    if (typeof v === "number") {
      if (!(v in BalancerEnum) || typeof BalancerEnum[v] !== "string") this.fail(path, `unknown Balancer enum value ${v}`);
      return balancerConfigFromProto(v as BalancerEnum);
    }
    if (typeof v === "string") v = { strategy: v };
    if (!isObject(v)) this.fail(path, `must be a strategy name or an object with "strategy", got ${describe(v)}`);
    const rawStrategy = v.strategy;
    if (typeof rawStrategy !== "string") this.fail(`${path}.strategy`, `must be one of ${STRATEGIES.join(", ")}, got ${describe(rawStrategy)}`);
    const strategy = strategyFromName(rawStrategy);
    if (strategy === undefined) this.fail(`${path}.strategy`, `unknown strategy ${JSON.stringify(rawStrategy)} (one of ${STRATEGIES.join(", ")})`);

    switch (strategy) {
      case "round_robin":
      case "weighted_round_robin":
      case "least_outstanding":
        this.onlyFields(v, path, ["strategy"]);
        return { strategy };
      case "consistent_hash": {
        this.onlyFields(v, path, ["strategy", "virtualNodes", "loadFactor", "withoutKey"]);
        const out: BalancerConfig = { strategy };
        if (v.virtualNodes !== undefined) {
          const n = v.virtualNodes;
          if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > 10_000)
            this.fail(`${path}.virtualNodes`, `must be an integer 1..10000, got ${describe(n)}`);
          out.virtualNodes = n;
        }
        if (v.loadFactor !== undefined) {
          const f = v.loadFactor;
          if (typeof f !== "number" || !(f > 1)) this.fail(`${path}.loadFactor`, `must be a number > 1 (1 + ε, e.g. 1.25), got ${describe(f)}`);
          out.loadFactor = f;
        }
        if (v.withoutKey !== undefined) out.withoutKey = this.config(v.withoutKey, `${path}.withoutKey`);
        return out;
      }
      case "subset": {
        this.onlyFields(v, path, ["strategy", "selector", "fallback", "onMissing", "inner"]);
        const sel = v.selector;
        if (!isObject(sel) || Object.keys(sel).length === 0)
          this.fail(`${path}.selector`, `must be an object of label → value | {"metadata": key} | {"routingKey": true}, got ${describe(sel)}`);
        const selector: Record<string, LabelSource> = {};
        for (const [k, src] of Object.entries(sel)) {
          const p = `${path}.selector.${k}`;
          if (typeof src === "string") selector[k] = src;
          else if (isObject(src) && Object.keys(src).length === 1 && typeof src.metadata === "string" && src.metadata !== "")
            selector[k] = { metadata: src.metadata.toLowerCase() };
          else if (isObject(src) && Object.keys(src).length === 1 && src.routingKey === true) selector[k] = { routingKey: true };
          else this.fail(p, `must be a label value, {"metadata": "<key>"} or {"routingKey": true}, got ${describe(src)}`);
        }
        const out: BalancerConfig = { strategy, selector };
        const fb = this.fallback(v.fallback, `${path}.fallback`);
        if (fb) out.fallback = fb;
        const om = this.fallback(v.onMissing, `${path}.onMissing`);
        if (om) out.onMissing = om;
        if (v.inner !== undefined) out.inner = this.config(v.inner, `${path}.inner`);
        return out;
      }
      case "split": {
        this.onlyFields(v, path, ["strategy", "splits", "inner"]);
        const splits = v.splits;
        if (!Array.isArray(splits) || splits.length === 0)
          this.fail(`${path}.splits`, `must be a non-empty array of {labels, percent}, got ${describe(splits)}`);
        let sum = 0;
        const out: BalancerConfig = {
          strategy,
          splits: splits.map((s: Json, i: number) => {
            const p = `${path}.splits[${i}]`;
            if (!isObject(s)) this.fail(p, `must be an object {labels, percent}, got ${describe(s)}`);
            this.onlyFields(s, p, ["labels", "percent"]);
            const percent = s.percent;
            if (typeof percent !== "number" || !(percent >= 0 && percent <= 100))
              this.fail(`${p}.percent`, `must be a number between 0 and 100, got ${describe(percent)}`);
            if (Math.abs(Math.round(percent * 100) - percent * 100) > 1e-6) this.fail(`${p}.percent`, `has more precision than 0.01 %: ${percent}`);
            sum += percent;
            if (sum > 100 + 1e-9) this.fail(`${p}.percent`, `splits add up to ${sum} %, more than 100 %`);
            return { labels: this.labels(s.labels, `${p}.labels`), percent };
          }),
        };
        if (v.inner !== undefined) out.inner = this.config(v.inner, `${path}.inner`);
        return out;
      }
      case "pin": {
        this.onlyFields(v, path, ["strategy", "metadataKey", "fallback", "inner"]);
        const out: BalancerConfig = { strategy, metadataKey: this.string(v.metadataKey, `${path}.metadataKey`).toLowerCase() };
        const fb = this.fallback(v.fallback, `${path}.fallback`);
        if (fb) out.fallback = fb;
        if (v.inner !== undefined) out.inner = this.config(v.inner, `${path}.inner`);
        return out;
      }
      case "locality": {
        this.onlyFields(v, path, ["strategy", "zone", "region", "zoneLabel", "regionLabel", "overprovisioning", "inner"]);
        const out: BalancerConfig = { strategy };
        for (const k of ["zone", "region", "zoneLabel", "regionLabel"] as const) if (v[k] !== undefined) out[k] = this.string(v[k], `${path}.${k}`);
        if (v.overprovisioning !== undefined) {
          const f = v.overprovisioning;
          if (typeof f !== "number" || !(f >= 1) || !Number.isFinite(f))
            this.fail(`${path}.overprovisioning`, `must be a number ≥ 1 (Envoy's default is 1.4), got ${describe(f)}`);
          out.overprovisioning = f;
        }
        if (v.inner !== undefined) out.inner = this.config(v.inner, `${path}.inner`);
        return out;
      }
      case "custom":
        this.onlyFields(v, path, ["strategy", "name"]);
        return { strategy, name: this.string(v.name, `${path}.name`) };
    }
  }
}

/**
 * Validates a plain JSON value as a balancer config. Also accepts a bare strategy name
 * ("least_outstanding", "BALANCER_CONSISTENT_HASH") or the proto enum number. Throws a
 * BalancerConfigError naming the field (`path` is the name of the root, "balancer" by
 * default; `source` prefixes the message, e.g. a file name).
 */
export function parseBalancerConfig(value: unknown, options: { path?: string; source?: string } = {}): BalancerConfig {
  return new Parser(options.source).config(value, options.path ?? "balancer");
}
