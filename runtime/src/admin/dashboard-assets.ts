// The dashboard's files for hosts other than the router's own HTTP server, chiefly the VS
// Code extension's debug panel (a webview). No node:fs, no gRPC: the extension imports it as
// `@grpcrouter/runtime/dashboard-assets` and its bundle stays small.
import { DASHBOARD_ASSETS } from "./ui-assets.js";

export { DASHBOARD_ASSETS };

/**
 * index.html for a VS Code webview: asset URLs rewritten to `assetBase` (the webview URI of
 * a folder holding DASHBOARD_ASSETS, e.g. `webview.asWebviewUri(...)`) and a CSP meta that
 * allows scripts, styles and images from `cspSource` only (nothing inline) and the
 * codicon font inlined in codicons.css. The page
 * then reads events from `window.postMessage` (see ui/sources.js for the protocol).
 */
export function dashboardWebviewHtml(options: { assetBase: string; cspSource: string }): string {
  const base = options.assetBase.replace(/\/+$/, "");
  const src = options.cspSource;
  // Fonts: only the codicons, inlined in codicons.css as a data: URL.
  const csp = `default-src 'none'; script-src ${src}; style-src ${src}; img-src ${src} data:; font-src data:`;
  return DASHBOARD_ASSETS["index.html"]!.replace(/(src|href)="\.\/([^"]+)"/g, (_m, attr: string, file: string) => `${attr}="${base}/${file}"`).replace(
    "<head>",
    `<head>\n    <meta http-equiv="Content-Security-Policy" content="${csp}">`,
  );
}
