// Entry point: VS Code starts it over node IPC (--node-ipc), tests and other editors over
// stdio (--stdio); createConnection picks the transport from the command line. The VSIX ships
// buf beside the bundled server (bin/buf), where the generator's findBuf looks.
import { ProposedFeatures, createConnection } from "vscode-languageserver/node";
import { startServer } from "./server.js";

startServer(createConnection(ProposedFeatures.all));
