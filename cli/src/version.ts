// Printed by --version; cli/test checks it matches cli/package.json.
export const CLI_VERSION = "0.1.0";
