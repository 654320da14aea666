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
/** Tasks per turn however slow turns are: progress even on a machine that is busy elsewhere. */
const MIN_TASKS_PER_TURN = 8;
/** Time per turn after which the rest waits for the next turn (at least one task runs). */
const BUDGET_MS = 10;
/**
 * A task that has waited this long gets its turn at the full rate, budget or not: a client
 * whose connection waits too long for the server's SETTINGS gives up and dials again
 * (the bridge after 10 s), which would only add to the burst.
 */
const MAX_WAIT_MS = 2000;

export class TurnPacer {
  private readonly queue: Array<() => void> = [];
  /** When each task in `queue` was queued. */
  private readonly queuedAt: number[] = [];
  /** Index of the next task in `queue` (shift() on a long array copies it). */
  private head = 0;
  private scheduled = false;
  /** Tasks this turn may start (perTurn, less while turns run long). */
  private limit: number;
  /** When the previous turn began, while turns follow each other (a burst is being worked off). */
  private previousTurnAt: number | undefined;

  constructor(
    private readonly perTurn = TASKS_PER_TURN,
    private readonly budgetMs = BUDGET_MS,
    private readonly maxWaitMs = MAX_WAIT_MS,
  ) {
    this.limit = perTurn;
  }

  /** Tasks waiting for their turn. */
  get waiting(): number {
    return this.queue.length - this.head;
  }

  /** Runs `task` in a later turn (in the order given), within the turn's budget. */
  run(task: () => void): void {
    this.queue.push(task);
    this.queuedAt.push(performance.now());
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
    // A task's work goes on after it returns (node:http2 reads the bytes a new connection
    // already sent in a process.nextTick; its Hello and Welcome follow): the time from one
    // turn to the next is what everything else waited. While that is over twice the budget,
    // half as many tasks per turn; while it is not, a few more, up to perTurn.
    if (this.previousTurnAt !== undefined) {
      if (start - this.previousTurnAt > 2 * this.budgetMs) this.limit = Math.max(Math.min(MIN_TASKS_PER_TURN, this.perTurn), this.limit >> 1);
      else this.limit = Math.min(this.perTurn, this.limit + 4);
    }
    // Behind by more than maxWaitMs: progress first (perTurn, whatever the time).
    const overdue = start - this.queuedAt[this.head]! > this.maxWaitMs;
    // Only tasks queued before this turn: one a task queues waits for the next.
    const end = Math.min(this.queue.length, this.head + (overdue ? this.perTurn : this.limit));
    while (this.head < end) {
      const task = this.queue[this.head]!;
      this.queue[this.head++] = noop; // let it be collected
      try {
        task();
      } catch {
        // A task's failure is its connection's problem; the others still get their turn.
      }
      if (!overdue && performance.now() - start >= this.budgetMs) break;
    }
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.queuedAt.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.queuedAt.splice(0, this.head);
      this.head = 0;
    }
    this.previousTurnAt = this.waiting > 0 ? start : undefined;
    this.schedule();
  };
}

function noop(): void {}
