// The version generated files and plugins report; kept in step with generator/package.json.
export const PLUGIN_VERSION = "0.1.0";
