export { addReflection, REFLECTION_SERVICES } from "./reflection.js";
export { createReflectionClient, ReflectionError, type ReflectionClient } from "./reflection-client.js";
export { RouterHealth, healthServiceDefinition } from "./health.js";
export {
  DEFAULT_DNS_PORT,
  RouterSet,
  RouterTargetError,
  lookupAll,
  parseRouterTarget,
  parseRouterTargets,
  type RouterEndpoint,
  type RouterSetOptions,
  type RouterTarget,
} from "./router-targets.js";
