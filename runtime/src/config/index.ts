// The router's configuration file: parsing, validation, per-service settings.
export {
  RouterConfigError,
  checkRouterConfig,
  loadRouterConfig,
  parseRouterConfig,
  parseRouterConfigText,
  settingsFor,
  type RouterConfig,
  type ServiceConfig,
} from "./router-config.js";
