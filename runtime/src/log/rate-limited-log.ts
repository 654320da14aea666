// A log that cannot be used to flood the operator's terminal (or disk): each kind of line
// (its "reason": the line with addresses, numbers and quoted names blanked out) is printed
// once per window; repeats are counted and summarised in one line when the window ends.
// An attacker that sends 10,000 bad Hellos or a frame with 20,000 bad trailer keys costs a
// few lines, not 20,000.

export interface RateLimitedLogOptions {
  /** How long repeats of one reason are counted before the summary line. Default 10 s. */
  windowMs?: number;
  /** Distinct reasons tracked at once; beyond it, lines of new reasons are counted together. Default 1000. */
  maxReasons?: number;
}

/** The reason a line stands for: quoted strings, addresses and numbers blanked out. */
export function reasonOf(line: string): string {
  return line
    .replace(/"(?:[^"\\]|\\.)*"/g, '"…"')
    .replace(/\b(?:ipv[46]:)?\[?[0-9a-f:.]*[0-9a-f]\]?:\d+\b/gi, "ADDR")
    .replace(/\d+/g, "N");
}

const UNLIMITED = /^(registered|deregistered|reconfigured) /;

export type LogFn = ((line: string) => void) & { flush(): void };

export function rateLimitedLog(log: (line: string) => void, options: RateLimitedLogOptions = {}): LogFn {
  const windowMs = options.windowMs ?? 10_000;
  const maxReasons = options.maxReasons ?? 1000;
  const seen = new Map<string, { first: string; repeats: number; timer: NodeJS.Timeout }>();
  let overflow = 0;
  let overflowTimer: NodeJS.Timeout | undefined;

  const summarise = (reason: string) => {
    const s = seen.get(reason);
    if (!s) return;
    seen.delete(reason);
    clearTimeout(s.timer);
    if (s.repeats > 0) log(`${s.repeats} more like this in the last ${Math.round(windowMs / 1000)} s: ${s.first}`);
  };
  const fn = ((line: string) => {
    // Membership changes are each worth a line (and bounded by the registration limits).
    if (UNLIMITED.test(line)) return log(line);
    const reason = reasonOf(line);
    const s = seen.get(reason);
    if (s) {
      s.repeats++;
      return;
    }
    if (seen.size >= maxReasons) {
      if (overflow++ === 0) {
        overflowTimer = setTimeout(() => {
          log(`${overflow} more log lines of ${maxReasons}+ different kinds in the last ${Math.round(windowMs / 1000)} s were not shown`);
          overflow = 0;
          overflowTimer = undefined;
        }, windowMs);
        overflowTimer.unref();
      }
      return;
    }
    log(line);
    const timer = setTimeout(() => summarise(reason), windowMs);
    timer.unref();
    seen.set(reason, { first: line, repeats: 0, timer });
  }) as LogFn;
  fn.flush = () => {
    for (const reason of [...seen.keys()]) summarise(reason);
  };
  return fn;
}
