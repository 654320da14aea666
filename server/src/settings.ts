// The `grpcrouter.*` settings as the server uses them, with their defaults. The extension's
// manifest (root package.json, "contributes.configuration") declares the same keys.
import { existsSync } from "node:fs";
import path from "node:path";

export interface Settings {
  /** Output folder; relative paths are resolved against the module root. */
  out: string;
  /** Explicit module roots, relative to the workspace folder (or absolute). */
  roots: string[];
  generateOnSave: boolean;
  /** false: leave compile errors to another extension (Buf's); routing-option problems still show. */
  diagnostics: { enable: boolean };
  /** Format with buf format when a .proto is saved (willSaveWaitUntil). */
  format: { onSave: boolean };
  /** buf lint findings as diagnostics. */
  lint: { enable: boolean };
  /** A git ref to run buf breaking against; "" is off. */
  breaking: { against: string };
}

export const DEFAULT_SETTINGS: Settings = {
  out: "gen",
  roots: [],
  generateOnSave: true,
  diagnostics: { enable: true },
  format: { onSave: false },
  lint: { enable: true },
  breaking: { against: "" },
};

export function withDefaults(raw: unknown): Settings {
  const r = (raw ?? {}) as Partial<Omit<Settings, "diagnostics" | "format" | "lint" | "breaking">> & {
    diagnostics?: Partial<Settings["diagnostics"]>;
    format?: Partial<Settings["format"]>;
    lint?: Partial<Settings["lint"]>;
    breaking?: Partial<Settings["breaking"]>;
  };
  return {
    out: typeof r.out === "string" && r.out.trim() ? r.out.trim() : DEFAULT_SETTINGS.out,
    roots: Array.isArray(r.roots) ? r.roots.filter((x): x is string => typeof x === "string") : [],
    generateOnSave: typeof r.generateOnSave === "boolean" ? r.generateOnSave : DEFAULT_SETTINGS.generateOnSave,
    diagnostics: { enable: typeof r.diagnostics?.enable === "boolean" ? r.diagnostics.enable : true },
    format: { onSave: r.format?.onSave === true },
    lint: { enable: typeof r.lint?.enable === "boolean" ? r.lint.enable : true },
    breaking: { against: typeof r.breaking?.against === "string" ? r.breaking.against.trim() : "" },
  };
}

export function expandFolderVars(p: string, folder: string): string {
  return p.replace(/\$\{workspaceFolder\}/g, folder);
}

/** The output folder of a module. */
export function outDirOf(settings: Settings, moduleRoot: string, folder: string): string {
  return path.resolve(moduleRoot, expandFolderVars(settings.out, folder));
}

/** A grpcrouter config next to the module marks a folder as one that wants generated code. */
export function hasGrpcrouterConfig(...dirs: string[]): boolean {
  const names = ["grpcrouter.yaml", "grpcrouter.yml", "grpcrouter.json"];
  return dirs.some((d) => names.some((n) => existsSync(path.join(d, n))));
}
