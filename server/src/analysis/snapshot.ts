// The last good compile of a module, with the lookups the editor features share.
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Compiled, FrameInfo } from "../generator-adapter.js";
import { printedProtos, type PrintedFile, type PrintedProtos } from "../workspace/printed-protos.js";
import { ProtoIndex, type Decl } from "./proto-index.js";

export class Snapshot {
  readonly index: ProtoIndex;
  private readonly fileToImport = new Map<string, string>();

  constructor(
    readonly compiled: Compiled,
    private readonly printed: PrintedProtos = printedProtos,
  ) {
    this.index = new ProtoIndex(compiled.descriptors ?? []);
    for (const [imp, file] of compiled.importToFile) this.fileToImport.set(path.resolve(file), imp);
  }

  importPathOf(file: string): string | undefined {
    return this.fileToImport.get(path.resolve(file));
  }

  /**
   * Where an import path lives on disk. grpcrouter's own protos are compiled from text the
   * generator embeds; we write them to a read-only cache so "go to definition" can open them.
   */
  fileOf(importPath: string): string | undefined {
    const own = this.compiled.importToFile.get(importPath);
    if (own) return own;
    const text = this.compiled.sources.get(importPath);
    if (text === undefined) return undefined;
    const file = path.join(os.tmpdir(), "grpcrouter-protos", importPath);
    try {
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, text);
    } catch {
      return undefined;
    }
    return file;
  }

  /**
   * A compiled file with no text of ours (a well-known type: buf has them built in), printed
   * from its descriptor into a read-only copy, with where each declaration landed.
   */
  printedFile(importPath: string): PrintedFile | undefined {
    if (this.compiled.importToFile.has(importPath) || this.compiled.sources.has(importPath)) return undefined;
    const desc = this.compiled.descriptors?.find((f) => f.name === importPath);
    return desc ? this.printed.get(desc) : undefined;
  }

  frame(method: Decl): FrameInfo | undefined {
    return this.compiled.frames.get(method.fqn);
  }
}
