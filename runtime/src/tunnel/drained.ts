// Awaited drains: a shutdown waits for its calls or connections to end by being told when
// one ends, not by polling, and gives up at its grace deadline.

import type { Clock, TimerHandle } from "../resilience/clock.js";

/** Tells whoever waits for some state to empty that it shrank; the code that shrinks it calls `changed()`. */
export class Drained {
  private readonly waiters = new Set<() => void>();

  changed(): void {
    for (const w of [...this.waiters]) w();
  }

  /**
   * Resolves once `done()` holds (checked now and on each `changed()`), or when `graceMs`
   * pass on `clock` (default: a real timer, which keeps the process alive meanwhile).
   * Resolves to whether it drained; a grace of 0 or less only looks once.
   */
  wait(done: () => boolean, graceMs: number, clock: Clock = heldClock): Promise<boolean> {
    return waitDrained([this], done, graceMs, clock);
  }

  /** @internal */
  subscribe(fn: () => void): () => void {
    this.waiters.add(fn);
    return () => this.waiters.delete(fn);
  }
}

/** `Drained.wait` over several notifiers (state spread over more than one set). */
export function waitDrained(sources: readonly Drained[], done: () => boolean, graceMs: number, clock: Clock = heldClock): Promise<boolean> {
  if (done()) return Promise.resolve(true);
  if (!(graceMs > 0)) return Promise.resolve(false);
  return new Promise((resolve) => {
    let timer: TimerHandle | undefined;
    let settled = false;
    const finish = (drained: boolean) => {
      if (settled) return;
      settled = true;
      for (const u of unsubscribe) u();
      if (timer) clock.clearTimeout(timer);
      resolve(drained);
    };
    const unsubscribe = sources.map((s) =>
      s.subscribe(() => {
        if (done()) finish(true);
      }),
    );
    timer = clock.setTimeout(() => finish(done()), graceMs);
  });
}

/** A Set whose deletions wake the waiters of its `drained`. */
export class DrainingSet<T> extends Set<T> {
  readonly drained = new Drained();

  override delete(value: T): boolean {
    const had = super.delete(value);
    if (had) this.drained.changed();
    return had;
  }

  override clear(): void {
    super.clear();
    this.drained.changed();
  }
}

/** Real timers that hold the process open while a drain waits, as the shutdown is awaited. */
const heldClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, Math.max(0, ms)),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** Calls `fn` once, on the writable's next 'drain' or 'close' (whichever comes first): room to write again, or no more writing. */
export function onDrainOrClose(w: NodeJS.EventEmitter, fn: () => void): void {
  const done = () => {
    w.off("drain", done);
    w.off("close", done);
    fn();
  };
  w.on("drain", done);
  w.on("close", done);
}
