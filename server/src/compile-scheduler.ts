// When to compile after an edit. A lone edit (after a quiet spell) is compiled at once: a buf
// run takes 60–100 ms, so any wait before it would be most of what the user waits for. Edits
// in a burst (typing, a paste that arrives as several changes) are compiled once, when the
// burst pauses. The caller cancels a compile still running for older text when a new one
// starts, so a result is never held up by one about text that is gone.

/** Edits closer together than this are one burst, compiled at its end. */
export const BURST_MS = 50;

export class CompileScheduler {
  private timer: NodeJS.Timeout | undefined;
  private lastEditAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly run: () => void,
    private readonly burstMs = BURST_MS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** After an edit: now if the module was quiet, else when the burst pauses. */
  edited(): void {
    const t = this.now();
    const quiet = this.timer === undefined && t - this.lastEditAt >= this.burstMs;
    this.lastEditAt = t;
    this.arm(quiet ? 0 : this.burstMs);
  }

  /** Compile as soon as the event loop allows (a save, an open, a reset), replacing a wait. */
  soon(): void {
    this.arm(0);
  }

  /** A compile is waiting to run (a burst has not paused yet, or `soon` was asked). */
  get pending(): boolean {
    return this.timer !== undefined;
  }

  cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(delay: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.run();
    }, delay);
  }
}
