// Keepalive pings for every HTTP/2 connection of a server, from one timer: each connection
// is pinged once it has been quiet for `timeMs` (no ping answered for that long), and closed
// when a ping is not answered within `timeoutMs`. A router holds thousands of connections
// (one per instance): a timer, its closures and a ping callback per connection were memory
// per instance for an event that comes every two hours.
import type * as http2 from "node:http2";

/** Pings sent per sweep at most: connections that came in one burst are due in one burst. */
const PINGS_PER_SWEEP = 1024;

export class SessionKeepalive {
  /** Per connection: when its next ping is due (> 0), or minus the time its answer is overdue (< 0). */
  private readonly due = new Map<http2.Http2Session, number>();
  private timer: NodeJS.Timeout | undefined;
  private readonly sweepMs: number;

  constructor(
    private readonly timeMs: number,
    private readonly timeoutMs: number,
  ) {
    // A ping goes out at most a quarter of the shorter period late, and a dead peer is found
    // at most that much after its timeout.
    this.sweepMs = Math.max(10, Math.min(timeMs, timeoutMs) / 4);
  }

  add(session: http2.Http2Session): void {
    this.due.set(session, Date.now() + this.timeMs);
    if (!this.timer) {
      this.timer = setInterval(this.sweep, this.sweepMs);
      this.timer.unref();
    }
  }

  delete(session: http2.Http2Session): void {
    this.due.delete(session);
    if (this.due.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private readonly sweep = (): void => {
    const now = Date.now();
    let pings = 0;
    for (const [session, due] of this.due) {
      if (due < 0) {
        if (now >= -due) {
          this.delete(session);
          session.destroy(new Error("keepalive ping not answered"));
        }
      } else if (now >= due && pings < PINGS_PER_SWEEP) {
        pings++;
        this.ping(session, now);
      }
    }
  };

  private ping(session: http2.Http2Session, now: number): void {
    this.due.set(session, -(now + this.timeoutMs));
    try {
      session.ping((err) => {
        // Answered (or the session went away, which its 'close' reports): quiet again from now.
        if (!err && this.due.has(session)) this.due.set(session, Date.now() + this.timeMs);
      });
    } catch {
      // Closing already (ERR_HTTP2_INVALID_SESSION): its 'close' follows.
      this.delete(session);
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.due.clear();
  }
}
