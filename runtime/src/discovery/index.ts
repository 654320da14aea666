export { addReflection } from "./reflection.js";
export { RouterHealth } from "./health.js";
