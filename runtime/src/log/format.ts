// Log lines as text ("grpcrouter: …") or as one JSON object per line (`--log-format json`),
// which log pipelines parse without regular expressions.

export type LogFormat = "text" | "json";

export function parseLogFormat(value: string | undefined, option = "--log-format"): LogFormat {
  if (value === undefined || value === "text") return "text";
  if (value === "json") return "json";
  throw new Error(`${option} ${value}: expected text or json`);
}

/** A logger writing `line` in `format` to `write`; `source` names the component ("grpcrouter", "grpcrouter bridge"). */
export function formatLogger(format: LogFormat, write: (text: string) => void, source = "grpcrouter"): (line: string) => void {
  if (format === "json")
    return (line) =>
      write(`${JSON.stringify({ time: new Date().toISOString(), level: /\b(warning|failed|cannot)\b/i.test(line) ? "warn" : "info", source, msg: line })}\n`);
  return (line) => write(`${source}: ${line}\n`);
}
