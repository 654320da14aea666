// The one diagnostic type of the generator: buf's compile errors, option validation errors
// and generation problems all end up here, so the CLI prints them and the language server
// publishes them the same way.

export type Severity = "error" | "warning" | "info";

export interface Diagnostic {
  /** Path relative to the module root (e.g. "demo/v1/echo.proto"); "" when no file applies. */
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based. */
  column: number;
  /** 1-based, inclusive line of the end of the range. */
  endLine: number;
  /** 1-based, exclusive column of the end of the range (like buf reports it). */
  endColumn: number;
  severity: Severity;
  message: string;
  /** Who found it: "buf" (compiler), "grpcrouter" (option validation, naming), "protoc-gen-es". */
  source: string;
}

/** `file:line:col: message`, the form compilers print and editors link. */
export function formatDiagnostic(d: Diagnostic): string {
  const where = d.file === "" ? d.source : `${d.file}:${d.line}:${d.column}`;
  const level = d.severity === "error" ? "" : `${d.severity}: `;
  return `${where}: ${level}${d.message}`;
}

export function hasErrors(diagnostics: readonly Diagnostic[]): boolean {
  return diagnostics.some((d) => d.severity === "error");
}

/** A diagnostic that is not tied to a place in a file. */
export function generalDiagnostic(message: string, source: string, severity: Severity = "error"): Diagnostic {
  return { file: "", line: 1, column: 1, endLine: 1, endColumn: 1, severity, message, source };
}
