// What a screen reader hears while the page runs: new calls, failed calls and instances that
// come and go, gathered and spoken at most once per interval (at thousands of calls a second
// a sentence per call would be noise). Failures go to an assertive region, the rest to a
// polite one (index.html: #live-errors, #live-calls). A snapshot (connect, resync) is not
// news and is not spoken.

/** Least time between two sentences in one region. */
export const ANNOUNCE_MS = 4000;

export class Announcer {
  constructor(politeEl, alertEl, intervalMs = ANNOUNCE_MS) {
    this.politeEl = politeEl;
    this.alertEl = alertEl;
    this.intervalMs = intervalMs;
    this.calls = 0;
    this.failed = 0;
    this.lastFailure = "";
    this.instances = [];
    this.lastPolite = -Infinity;
    this.lastAlert = -Infinity;
    this.timer = undefined;
  }

  callStarted() {
    this.calls++;
  }

  /** `what`: e.g. "/demo.v1.Echo/Say UNAVAILABLE". */
  callFailed(what) {
    this.failed++;
    this.lastFailure = what;
  }

  /** `what`: e.g. "instance e2e-1 of demo.v1.Echo registered". */
  instance(what) {
    this.instances.push(what);
    if (this.instances.length > 3) this.instances.splice(0, this.instances.length - 3);
  }

  /**
   * Speaks what gathered, when the interval allows; call it from the page's render pass. What
   * must wait is spoken by a timer, so the last news of a burst is not held back for good.
   */
  flush(now = performance.now()) {
    if (this.failed && now - this.lastAlert >= this.intervalMs) {
      this.alertEl.textContent = this.failed === 1 ? `Call failed: ${this.lastFailure}` : `${this.failed} calls failed, the last: ${this.lastFailure}`;
      this.failed = 0;
      this.lastAlert = now;
    }
    if ((this.calls || this.instances.length) && now - this.lastPolite >= this.intervalMs) {
      const parts = [...this.instances];
      if (this.calls) parts.push(this.calls === 1 ? "1 new call" : `${this.calls} new calls`);
      this.politeEl.textContent = parts.join(". ");
      this.calls = 0;
      this.instances = [];
      this.lastPolite = now;
    }
    const waits = [this.failed ? this.lastAlert : undefined, this.calls || this.instances.length ? this.lastPolite : undefined].filter((t) => t !== undefined);
    if (waits.length && !this.timer) {
      this.timer = setTimeout(
        () => {
          this.timer = undefined;
          this.flush();
        },
        Math.max(0, Math.min(...waits) + this.intervalMs - now),
      );
    }
  }
}
