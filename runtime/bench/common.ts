// What the benches that start processes (dataplane, routers, sidecar, serve-ab) share: their
// numeric settings from the environment, the Echo module and method they drive, and how their
// reports print numbers, medians and the machine's load.
import { loadavg } from "node:os";

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

/** The median of rounds (of an even number, the mean of the middle two). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The machine's load averages (1, 5, 15 minutes), e.g. "3.9 4.2 4.8". */
export const loadAverage = (): string =>
  loadavg()
    .map((x) => x.toFixed(1))
    .join(" ");
