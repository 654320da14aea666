// Read-only copies of compiled files that are not on disk — the well-known types, which buf
// carries built in, and dependencies buf fetched into its own cache — printed from their
// descriptors (with comments) so that "go to definition" can open them at the declaration.
import { createHash } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import { printProto } from "../analysis/print-proto.js";
import type { Range } from "../analysis/proto-index.js";
import { bufVersion } from "../generator-adapter.js";
import { isInside } from "./modules.js";

/** Where the server keeps the read-only copies of protos that have no file of their own. */
export const PROTO_CACHE_DIR = path.join(os.tmpdir(), "grpcrouter-protos");

export interface PrintedFile {
  /** Absolute path of the printed copy. */
  file: string;
  /** Fully-qualified name → range of its declaration (`message Timestamp`) in the copy. */
  names: ReadonlyMap<string, Range>;
  /** The first top-level declaration: where an import of the file lands. */
  first?: Range;
}

export class PrintedProtos {
  private readonly memo = new Map<string, PrintedFile>();

  constructor(
    readonly base = PROTO_CACHE_DIR,
    private readonly version: () => string | undefined = bufVersion,
  ) {}

  /** True for files under the cache: the server neither compiles nor publishes for them. */
  owns(file: string): boolean {
    return isInside(this.base, file);
  }

  /** The printed copy of `desc`, written on first use; undefined when it cannot be written. */
  get(desc: FileDescriptorProto): PrintedFile | undefined {
    const file = path.join(this.base, this.folderFor(desc), ...desc.name.split("/"));
    const known = this.memo.get(file);
    if (known) return known;
    const printed = printProto(desc);
    try {
      writeReadOnly(file, printed.text);
    } catch {
      return undefined;
    }
    const result: PrintedFile = { file, names: printed.names, first: printed.first };
    this.memo.set(file, result);
    return result;
  }

  /**
   * The well-known types change only with buf, so their copies are cached per buf version
   * (`buf-1.75.0/google/protobuf/timestamp.proto`); anything else, or when buf cannot tell
   * its version, by a hash of the descriptor.
   */
  private folderFor(desc: FileDescriptorProto): string {
    const version = desc.name.startsWith("google/protobuf/") ? this.version() : undefined;
    if (version) return `buf-${version}`;
    return `descriptor-${createHash("sha256").update(toBinary(FileDescriptorProtoSchema, desc)).digest("hex").slice(0, 16)}`;
  }
}

/**
 * Writes `text` to `file` unless it already holds it, and leaves it read-only (nobody should
 * edit a copy). A temporary file renamed into place keeps two servers writing at once from
 * ever showing a half-written copy.
 */
function writeReadOnly(file: string, text: string): void {
  try {
    if (readFileSync(file, "utf8") === text) return;
  } catch {
    // not there yet
  }
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(tmp, text);
  chmodSync(tmp, 0o444);
  try {
    renameSync(tmp, file);
  } catch {
    // Windows will not replace a read-only file: make the old copy writable and try again.
    chmodSync(file, 0o644);
    renameSync(tmp, file);
  }
}

/** One cache for the whole server: the copies are the same for every module. */
export const printedProtos = new PrintedProtos();
