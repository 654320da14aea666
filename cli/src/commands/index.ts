// The command table. Add a command here (e.g. serve, bridge) and main.ts picks it up.
import type { Command } from "../command.js";
import { checkCommand } from "./check.js";
import { generateCommand } from "./generate.js";
import { serveCommand } from "./serve.js";
import { bridgeCommand } from "./bridge.js";
import { healthCommand } from "./health.js";

export const commands: readonly Command[] = [generateCommand, checkCommand, serveCommand, bridgeCommand, healthCommand];
