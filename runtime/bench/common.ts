// What the CLI-driven benches (dataplane, routers) share: their numeric settings from the
// environment, the Echo module and method they drive, and how their reports print numbers.

/** A BENCH_* setting: a number ≥ 0, `fallback` when unset or empty. */
export function env(name: string, fallback: number): number {
  const v = process.env[name];
  const n = v === undefined || v === "" ? fallback : Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}=${v}: expected a number`);
  return n;
}

export const SAY = "/demo.v1.Echo/Say";
/** The Echo example as `grpcrouter serve` and `grpcrouter bridge` take it. */
export const echoModule = ["--root", "examples/echo/proto", "--out", "examples/echo/gen"];

/** A figure of a report, grouped by thousands; "–" for none. */
export const fmt = (n: number | undefined, digits = 0): string =>
  n === undefined || !Number.isFinite(n) ? "–" : n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
