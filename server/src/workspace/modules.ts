// Which proto module a file belongs to, found the way buf finds it: the nearest buf.yaml
// upward (v1 or v2), else the workspace folder. Explicit `grpcrouter.roots` settings win over both.
import { existsSync, readdirSync, statSync } from "node:fs";
import path from "node:path";

export interface ProtoModule {
  /** Absolute folder that import paths are relative to (buf's module root). */
  root: string;
  /** The buf.yaml that defined it, when one did. */
  bufYaml?: string;
  /** Absolute workspace folder the module lies in (where the output folder is resolved). */
  folder: string;
}

export interface ModuleContext {
  /** Absolute workspace folder paths (multi-root workspaces have several). */
  folders: string[];
  /** Absolute module roots the user configured (`grpcrouter.roots`). */
  roots: string[];
}

const isInside = (dir: string, file: string) => {
  const rel = path.relative(dir, file);
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
};

/** The innermost of `dirs` that contains `file`. */
export function innermost(dirs: string[], file: string): string | undefined {
  return dirs.filter((d) => isInside(d, file)).sort((a, b) => b.length - a.length)[0];
}

export function moduleForFile(file: string, ctx: ModuleContext): ProtoModule {
  const folder = innermost(ctx.folders, file) ?? path.dirname(file);
  const configured = innermost(ctx.roots, file);
  if (configured) return { root: configured, folder };

  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    const bufYaml = path.join(dir, "buf.yaml");
    // The generator asks buf itself which module folders a buf.yaml (v1 or v2) names, so the
    // folder of the nearest buf.yaml is the root we compile.
    if (existsSync(bufYaml)) return { root: dir, bufYaml, folder };
    if (dir === folder || path.dirname(dir) === dir || !isInside(folder, dir)) break;
  }
  return { root: folder, folder };
}

/** Every .proto below a module root, skipping dependency and output folders. */
export function listProtoFiles(root: string, skip: string[] = []): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) {
      if (name === "node_modules" || name.startsWith(".")) continue;
      const p = path.join(dir, name);
      if (skip.some((s) => isInside(s, p))) continue;
      let st;
      try {
        st = statSync(p);
      } catch {
        continue;
      }
      if (st.isDirectory()) walk(p);
      else if (name.endsWith(".proto")) out.push(p);
    }
  };
  walk(root);
  return out.sort();
}

/** True when some .proto of the module declares a service: then generating makes sense. */
export async function declaresService(files: string[], read: (file: string) => string | Promise<string>): Promise<boolean> {
  for (const f of files) if (/(^|\n)\s*service\s+[A-Za-z_]\w*\s*\{/.test(stripComments(await read(f)))) return true;
  return false;
}

function stripComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/[^\n]*/g, "");
}

export { isInside };
