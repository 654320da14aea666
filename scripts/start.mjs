// `npm start`: the README's first command. Generates the bundled example (all four phases,
// from examples/echo/proto), then runs it: a router, a bridged Echo instance, one call of
// each kind through the router. Extra arguments go to the example (`--once`, `--port N`).
import { spawn, spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const tsx = ["--conditions=@grpcrouter/source", "--import", "tsx"];

const gen = spawnSync(process.execPath, [...tsx, "cli/src/main.ts", "generate", "--root", "examples/echo/proto", "--out", "examples/echo/gen"], {
  cwd: root,
  stdio: "inherit",
});
if (gen.status !== 0) process.exit(gen.status ?? 1);

const child = spawn(process.execPath, [...tsx, "examples/echo/src/main.ts", ...process.argv.slice(2)], {
  cwd: root,
  stdio: "inherit",
});
// Ctrl-C reaches the child through the terminal's process group; SIGTERM from a supervisor
// is passed on so the example can drain.
process.on("SIGTERM", () => child.kill("SIGTERM"));
process.on("SIGINT", () => {});
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
