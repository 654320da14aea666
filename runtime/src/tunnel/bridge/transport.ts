// Which transport a bridge's Register streams to one router take. "h2" and "websocket" are
// fixed; "auto" starts on HTTP/2 and moves to WebSocket when a connection to the router is
// made but HTTP/2 cannot be spoken on it (a proxy on the way answers HTTP/1.1 only, ALPN
// refuses h2). While on WebSocket it probes HTTP/2 in the background, with a growing
// jittered delay, and moves back once HTTP/2 works: the owner opens new Register streams over
// HTTP/2 and drains the WebSocket ones, so calls in flight finish where they are.
import { backoffDelay, type BackoffOptions } from "../backoff.js";

export type TransportMode = "auto" | "h2" | "websocket";

export const TRANSPORT_MODES: readonly TransportMode[] = ["auto", "h2", "websocket"];

/** Default probe delays while on the fallback: 5 s, ×2, ±20 %, at most 5 min. */
const DEFAULT_PROBE: BackoffOptions = { initialMs: 5000, multiplier: 2, maxMs: 300_000, jitter: 0.2 };

export interface TransportEvents {
  /** Whether HTTP/2 can be established now (a connection, and the peer's SETTINGS). */
  probeH2(): Promise<boolean>;
  /** The probe succeeded: move the Register streams back to HTTP/2. */
  backToH2(): void;
  log(line: string): void;
}

export class TransportChoice {
  private fallback = false;
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  private probing = false;
  private closed = false;

  constructor(
    readonly mode: TransportMode,
    private readonly what: string,
    private readonly events: TransportEvents,
    private readonly probe: BackoffOptions = DEFAULT_PROBE,
  ) {}

  /** The transport a new Register stream takes now. */
  get current(): "h2" | "websocket" {
    return this.mode === "websocket" || this.fallback ? "websocket" : "h2";
  }

  /**
   * HTTP/2 could not be established on a connection that was made. True when the stream
   * should be retried over WebSocket at once (auto), false when it stays on HTTP/2.
   */
  h2Failed(reason: string): boolean {
    if (this.mode !== "auto" || this.closed) return false;
    if (!this.fallback) {
      this.fallback = true;
      this.attempt = 0;
      this.events.log(`HTTP/2 to ${this.what} could not be established (${reason}); falling back to WebSocket, probing HTTP/2 in the background`);
      this.schedule();
    }
    return true;
  }

  private schedule(): void {
    if (this.closed || this.timer || this.probing) return;
    const delay = backoffDelay(this.attempt++, { ...DEFAULT_PROBE, ...this.probe });
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.runProbe();
    }, delay);
    this.timer.unref();
  }

  private async runProbe(): Promise<void> {
    if (this.closed || !this.fallback) return;
    this.probing = true;
    let ok = false;
    try {
      ok = await this.events.probeH2();
    } catch {
      ok = false;
    }
    this.probing = false;
    if (this.closed) return;
    if (!ok) return this.schedule();
    this.fallback = false;
    this.events.log(`HTTP/2 to ${this.what} works again; moving the Register streams back to HTTP/2 (the WebSocket ones drain)`);
    this.events.backToH2();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
