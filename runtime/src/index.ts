// @grpcrouter/runtime: what generated routers and bridges, the CLI and the editor import.
// One export line per area; add yours, keep them grouped.
export * from "./balancer/index.js";
export * from "./resilience/index.js";
export * from "./admin/index.js";
export * from "./metrics/index.js";
export * from "./tracing/index.js";
export * from "./discovery/index.js";
export * from "./tunnel/index.js";
export * from "./config/index.js";
export * from "./auth/index.js";
export * from "./log/index.js";
