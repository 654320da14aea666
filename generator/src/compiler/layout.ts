// Finds what buf would treat as the module(s) below a root: the module folders named by
// buf.yaml (v1: the root itself; v2: `modules[].path`, each with its `excludes`), or the root
// alone when there is no buf.yaml. buf itself reads buf.yaml (`buf config ls-modules`), so we
// never reimplement its config rules; the answer is cached by the file's text.
import { generalDiagnostic, type Diagnostic } from "../diagnostics.js";
import { runBuf } from "./buf.js";

export interface ModuleDir {
  /** Relative to the root, "/"-separated, "." for the root itself. */
  dir: string;
  /** Folders (relative to the root) whose files are not part of the module. */
  excludes: string[];
}

export interface ModuleLayout {
  modules: ModuleDir[];
  diagnostics: Diagnostic[];
}

const layoutCache = new Map<string, ModuleLayout>();

export async function moduleLayout(root: string, bufYaml: string | undefined, signal?: AbortSignal): Promise<ModuleLayout> {
  if (bufYaml === undefined) return { modules: [{ dir: ".", excludes: [] }], diagnostics: [] };
  const cached = layoutCache.get(bufYaml);
  if (cached) return cached;
  const r = await runBuf(["config", "ls-modules", "--format", "json", "--config", bufYaml], { signal, cwd: root });
  let layout: ModuleLayout;
  if (r.status !== 0) {
    const message = r.stderr.trim().replace(/^Failure:\s*/, "") || `buf config ls-modules exited with ${r.status}`;
    const d = generalDiagnostic(`invalid buf.yaml: ${message}`, "buf");
    layout = { modules: [], diagnostics: [{ ...d, file: "buf.yaml" }] };
  } else {
    const modules: ModuleDir[] = [];
    for (const line of Buffer.from(r.stdout).toString("utf8").split("\n")) {
      if (!line.trim()) continue;
      const m = JSON.parse(line) as { path: string; excludes?: string[] };
      modules.push({ dir: normalizeDir(m.path), excludes: (m.excludes ?? []).map(normalizeDir) });
    }
    layout = { modules: modules.length ? modules : [{ dir: ".", excludes: [] }], diagnostics: [] };
    // deps from the BSR would need the network; say so instead of failing obscurely later.
    if (/^\s*deps\s*:/m.test(bufYaml)) {
      layout.diagnostics.push({
        ...generalDiagnostic("buf.yaml deps are not supported by grpcrouter: vendor the dependency's .proto files into the module", "grpcrouter", "warning"),
        file: "buf.yaml",
      });
    }
  }
  layoutCache.set(bufYaml, layout);
  return layout;
}

function normalizeDir(p: string): string {
  const s = p
    .replace(/\\/g, "/")
    .replace(/^\.\/+/, "")
    .replace(/\/+$/, "");
  return s === "" ? "." : s;
}
