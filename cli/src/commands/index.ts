// The command table. Add a command here (e.g. serve, bridge) and main.ts picks it up.
import type { Command } from "../command.js";
import { checkCommand } from "./check.js";
import { generateCommand } from "./generate.js";

export const commands: readonly Command[] = [generateCommand, checkCommand];
