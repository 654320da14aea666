// --root/--out handling shared by the commands that read a proto module.
import { statSync } from "node:fs";
import path from "node:path";
import { UsageError, type OptionSpecs } from "../command.js";

export const moduleOptions: OptionSpecs = {
  root: { type: "string" },
  out: { type: "string" },
};

export const moduleDetails = [
  "  --root DIR   the proto module: a folder with buf.yaml, or of .proto files (default: .)",
  "  --out DIR    the output folder (default: gen)",
];

export function moduleArgs(values: Record<string, string | boolean | undefined>, cwd: string): { root: string; out: string } {
  const root = path.resolve(cwd, typeof values.root === "string" ? values.root : ".");
  const out = path.resolve(cwd, typeof values.out === "string" ? values.out : "gen");
  let isDir = false;
  try {
    isDir = statSync(root).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir) throw new UsageError(`--root ${values.root ?? "."}: no such folder (${root})`);
  try {
    if (!statSync(out).isDirectory()) throw new UsageError(`--out ${values.out ?? "gen"}: not a folder (${out})`);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    // A missing output folder is fine: generate creates it.
  }
  return { root, out };
}
