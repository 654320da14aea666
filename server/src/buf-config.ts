// buf's own files beside a module's protos (buf.yaml, buf.lock): which files they are, and
// where in one of them a problem buf reports lies, so that it shows on its line in the file
// and is named on the open .proto files, whose lint and generation it stops.
import path from "node:path";
import type { Range } from "vscode-languageserver";

export const BUF_CONFIG_FILES = ["buf.yaml", "buf.lock"];

export function isBufConfig(file: string): boolean {
  return BUF_CONFIG_FILES.includes(path.basename(file));
}

/** The config file of a module that a message of buf's is about: buf.lock when it says so, else buf.yaml. */
export function configFileNamed(root: string, message: string): string {
  return path.join(root, /\bbuf\.lock\b/.test(message) ? "buf.lock" : "buf.yaml");
}

/**
 * Where in a config file's text buf's message points: the line its YAML parser names
 * ("yaml: line 3: ..."), else the first quoted word of the message found in the text (an
 * unknown rule id), else the first line.
 */
export function problemRange(text: string | undefined, message: string): Range {
  const lines = text?.split("\n") ?? [];
  const wholeLine = (line: number): Range => {
    const t = lines[line] ?? "";
    const start = t.length - t.trimStart().length;
    return { start: { line, character: start }, end: { line, character: Math.max(start + 1, t.trimEnd().length) } };
  };
  const yamlLine = /\byaml: line (\d+)\b/.exec(message);
  if (yamlLine) {
    const line = Number(yamlLine[1]) - 1;
    if (line >= 0 && line < lines.length) return wholeLine(line);
  }
  for (const [, word] of message.matchAll(/"([^"\s]+)"/g)) {
    const at = lines.findIndex((l) => l.includes(word!));
    if (at >= 0) {
      const character = lines[at]!.indexOf(word!);
      return { start: { line: at, character }, end: { line: at, character: character + word!.length } };
    }
  }
  return wholeLine(0);
}
