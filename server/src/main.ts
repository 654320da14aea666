// Entry point: VS Code starts it over node IPC (--node-ipc), tests and other editors over
// stdio (--stdio); createConnection picks the transport from the command line.
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ProposedFeatures, createConnection } from "vscode-languageserver/node";
import { startServer } from "./server.js";

// The VSIX ships buf beside the bundled server (bin/buf); the generator honours GRPCROUTER_BUF.
const bundledBuf = path.join(path.dirname(fileURLToPath(import.meta.url)), "bin", process.platform === "win32" ? "buf.exe" : "buf");
if (!process.env.GRPCROUTER_BUF && existsSync(bundledBuf)) process.env.GRPCROUTER_BUF = bundledBuf;

startServer(createConnection(ProposedFeatures.all));
