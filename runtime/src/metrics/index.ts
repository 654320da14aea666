// Prometheus metrics of the router (prom-client), fed by its AdminHub.
export { createRouterMetrics, type RouterMetrics, type RouterMetricsOptions, type MetricsSource } from "./router-metrics.js";
export { startMetricsServer, serveMetrics, type MetricsServer, type MetricsServerOptions } from "./server.js";
export { grpcCodeName, grpcTypeName } from "./codes.js";
