// The call list's views: all calls (newest first), slow calls (the slowest ended calls
// first) and errors (failed calls, newest first, with the first failure — where the errors
// started — marked and one key away).

/** Rows of the slow view: enough to find the culprit, few enough to read. */
export const SLOW_ROWS = 100;

export const VIEWS = [
  ["", "all calls"],
  ["slow", "slow calls"],
  ["errors", "errors"],
];

const failed = (c) => c.ended !== undefined && c.ended.code !== 0;

/** Whether a call belongs in `view`. */
export function inView(call, view) {
  if (view === "errors") return failed(call);
  if (view === "slow") return call.ended !== undefined;
  return true;
}

/** The calls of `view` in display order (`calls` come oldest first). */
export function arrange(calls, view) {
  if (view === "slow") return [...calls].sort((a, b) => b.ended.durationMs - a.ended.durationMs).slice(0, SLOW_ROWS);
  return calls.slice().reverse();
}

/** The earliest failed call among `calls` (by start time), or undefined. */
export function firstFailure(calls) {
  let first;
  for (const c of calls) if (failed(c) && (!first || c.startMs < first.startMs)) first = c;
  return first;
}
