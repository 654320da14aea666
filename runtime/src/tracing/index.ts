// OpenTelemetry tracing of the router (@opentelemetry/api), fed by its AdminHub.
export { createRouterTracing, splitHostPort, TRACER_NAME, ABANDONED_ATTRIBUTE, type RouterTracing, type RouterTracingOptions } from "./router-tracing.js";
