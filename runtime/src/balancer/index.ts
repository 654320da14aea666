// Load balancing: strategies that pick an instance for each call. Pure: no I/O, no timers.
export type { Balancer, Candidate, CustomPickFunction, Pick, PickContext, RandomSource } from "./types.js";
export { RoundRobinBalancer } from "./round-robin.js";
export { WeightedRoundRobinBalancer } from "./weighted-round-robin.js";
export { LeastOutstandingBalancer } from "./least-outstanding.js";
export { ConsistentHashBalancer, type ConsistentHashOptions } from "./consistent-hash.js";
export { SubsetBalancer, type LabelSource, type SubsetFallback, type SubsetOptions } from "./subset.js";
export { SplitBalancer, type SplitOptions, type SplitRule } from "./split.js";
export { PinBalancer, type PinOptions } from "./pin.js";
export { CustomBalancer } from "./custom.js";
export { LocalityBalancer, type Locality, type LocalityOptions } from "./locality.js";
export {
  BalancerConfigError,
  balancerConfigFromProto,
  parseBalancerConfig,
  type BalancerConfig,
  type StrategyName,
} from "./config.js";
export { createBalancer, type CreateBalancerOptions } from "./factory.js";
export { hashString, seededRandom, weightOf } from "./util.js";
