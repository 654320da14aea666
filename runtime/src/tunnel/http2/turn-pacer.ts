// Work that arrives in bursts of thousands (new connections when a router restarts and every
// instance reconnects at once) runs a bounded amount per event-loop turn, so that the answers
// of established connections (a health check, calls in flight) wait at most about one
// turn's budget instead of the whole burst.
//
// Why per turn and not per callback: libuv handles every ready socket in one poll phase (up
// to 48 × 1,024 events) before node runs the immediates that send HTTP/2 frames and the
// timers. When 10,000 new connections send their first bytes within a second, setting up
// their HTTP/2 sessions where those bytes are read held everything else for seconds.

/** Tasks started per turn at most. */
const TASKS_PER_TURN = 64;
/** Time per turn after which the rest waits for the next turn (at least one task runs). */
const BUDGET_MS = 10;

export class TurnPacer {
  private readonly queue: Array<() => void> = [];
  /** Index of the next task in `queue` (shift() on a long array copies it). */
  private head = 0;
  private scheduled = false;

  constructor(
    private readonly perTurn = TASKS_PER_TURN,
    private readonly budgetMs = BUDGET_MS,
  ) {}

  /** Tasks waiting for their turn. */
  get waiting(): number {
    return this.queue.length - this.head;
  }

  /** Runs `task` in a later turn (in the order given), within the turn's budget. */
  run(task: () => void): void {
    this.queue.push(task);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.waiting === 0) return;
    this.scheduled = true;
    setImmediate(this.turn);
  }

  private readonly turn = (): void => {
    this.scheduled = false;
    const start = performance.now();
    // Only tasks queued before this turn: one a task queues waits for the next.
    const end = Math.min(this.queue.length, this.head + this.perTurn);
    while (this.head < end) {
      const task = this.queue[this.head]!;
      this.queue[this.head++] = noop; // let it be collected
      try {
        task();
      } catch {
        // A task's failure is its connection's problem; the others still get their turn.
      }
      if (performance.now() - start >= this.budgetMs) break;
    }
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    this.schedule();
  };
}

function noop(): void {}
