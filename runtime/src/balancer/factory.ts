import type { Balancer, CustomPickFunction, RandomSource } from "./types.js";
import { parseBalancerConfig, BalancerConfigError, type BalancerConfig } from "./config.js";
import { RoundRobinBalancer } from "./round-robin.js";
import { WeightedRoundRobinBalancer } from "./weighted-round-robin.js";
import { LeastOutstandingBalancer } from "./least-outstanding.js";
import { ConsistentHashBalancer } from "./consistent-hash.js";
import { SubsetBalancer } from "./subset.js";
import { SplitBalancer } from "./split.js";
import { PinBalancer } from "./pin.js";
import { CustomBalancer } from "./custom.js";
import { LocalityBalancer, type Locality } from "./locality.js";

export interface CreateBalancerOptions {
  /** Named functions a config can refer to with { strategy: "custom", name }. */
  custom?: Readonly<Record<string, CustomPickFunction>>;
  /** Random source for least outstanding (default Math.random). */
  random?: RandomSource;
  /**
   * Where this router runs, for { strategy: "locality" } configs that name no zone/region
   * themselves (one config file shared by routers in several zones). Default: the
   * GRPCROUTER_ZONE and GRPCROUTER_REGION environment variables.
   */
  locality?: Locality;
  /** Root name and source used in error messages (default "balancer"). */
  path?: string;
  source?: string;
}

/**
 * Builds a balancer from a plain JSON-able config, validating it first (see
 * parseBalancerConfig). Wrappers (subset, split, pin) take an `inner` config that
 * defaults to round robin.
 */
export function createBalancer(config: unknown, options: CreateBalancerOptions = {}): Balancer {
  const parsed = parseBalancerConfig(config, options);
  return build(parsed, options.path ?? "balancer", options);
}

const ROUND_ROBIN: BalancerConfig = { strategy: "round_robin" };

function build(config: BalancerConfig, path: string, options: CreateBalancerOptions): Balancer {
  switch (config.strategy) {
    case "round_robin":
      return new RoundRobinBalancer();
    case "weighted_round_robin":
      return new WeightedRoundRobinBalancer();
    case "least_outstanding":
      return new LeastOutstandingBalancer(options.random);
    case "consistent_hash":
      return new ConsistentHashBalancer({
        virtualNodes: config.virtualNodes,
        loadFactor: config.loadFactor,
        withoutKey: build(config.withoutKey ?? ROUND_ROBIN, `${path}.withoutKey`, options),
      });
    case "subset": {
      const inner = config.inner ?? ROUND_ROBIN;
      return new SubsetBalancer({
        selector: config.selector,
        fallback: config.fallback,
        onMissing: config.onMissing,
        inner: () => build(inner, `${path}.inner`, options),
      });
    }
    case "split": {
      const inner = config.inner ?? ROUND_ROBIN;
      return new SplitBalancer({ splits: config.splits, inner: () => build(inner, `${path}.inner`, options) });
    }
    case "pin":
      return new PinBalancer({
        metadataKey: config.metadataKey,
        fallback: config.fallback,
        inner: build(config.inner ?? ROUND_ROBIN, `${path}.inner`, options),
      });
    case "locality": {
      const inner = config.inner ?? ROUND_ROBIN;
      const here = options.locality ?? { zone: process.env.GRPCROUTER_ZONE || undefined, region: process.env.GRPCROUTER_REGION || undefined };
      return new LocalityBalancer({
        locality: { zone: config.zone ?? here.zone, region: config.region ?? here.region },
        zoneLabel: config.zoneLabel,
        regionLabel: config.regionLabel,
        overprovisioning: config.overprovisioning,
        inner: () => build(inner, `${path}.inner`, options),
      });
    }
    case "custom": {
      const fn = options.custom?.[config.name];
      if (fn === undefined) {
        const known = Object.keys(options.custom ?? {});
        throw new BalancerConfigError(
          `${path}.name`,
          `no custom strategy named ${JSON.stringify(config.name)} was registered (known: ${known.length ? known.join(", ") : "none"})`,
          options.source,
        );
      }
      return new CustomBalancer(fn, config.name);
    }
  }
}
