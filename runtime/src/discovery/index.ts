export { addReflection, REFLECTION_SERVICES } from "./reflection.js";
export { createReflectionClient, ReflectionError, type ReflectionClient } from "./reflection-client.js";
export { RouterHealth, healthServiceDefinition } from "./health.js";
