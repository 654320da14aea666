// Byte bounds on what the router keeps for its instances' Register streams. Two things grow
// when a peer misbehaves, and both are bounded here by one action: stop reading that
// Register stream until they shrink (the peer's further frames then wait in HTTP/2 flow
// control, on its side).
//  - Held responses: response bytes received for clients that have not taken them yet
//    (`held`, the calls' unacked bytes). Per-call windows bound it only up to one message per
//    call, and a message may be megabytes: 1,024 calls overdrawing by 4 MB each is 4 GB. So
//    a stream holding more than `streamBufferBytes`, or any stream holding bytes while the
//    router as a whole holds more than `routerBufferBytes`, is not read until it holds less.
//  - Queued frames: what the router has written to the stream and HTTP/2 has not sent yet
//    (Pongs, window updates, requests). An instance that sends Pings and never reads would
//    otherwise queue Pongs without end. Over `queuedBytesPerStream` the stream is not read;
//    still over it after the heartbeat timeout, the instance is dropped ("does not read").
// A paused stream is not silent by its own doing, so it is not dropped for heartbeat silence
// while it holds responses for slow clients.

export interface ByteBounds {
  /** Response bytes one Register stream may hold for its clients (RouterOptions.streamBufferBytes). */
  readonly streamBufferBytes: number;
  /** Response bytes all streams together may hold (RouterOptions.maxBufferedBytes). */
  readonly routerBufferBytes: number;
  /** Frame bytes queued for one stream's instance and not yet sent (RouterOptions.maxQueuedBytesPerStream). */
  readonly queuedBytesPerStream: number;
  /** Frame bytes queued over all streams (RouterOptions.maxQueuedBytes): over it, streams with any queued are not read. */
  readonly routerQueuedBytes: number;
}

/** How often a paused stream checks whether it may read again (grants to slow clients arrive unannounced). */
const RECHECK_MS = 20;

export class RouterByteBudget {
  private readonly meters = new Set<StreamMeter>();
  /** Sum of the meters' last measured held bytes. */
  held = 0;
  /** Frame bytes queued over all streams. */
  queued = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly bounds: ByteBounds,
    /** The router's clock (RouterOptions.clock): how long a queue stayed over its bound. */
    readonly now: () => number = Date.now,
  ) {}

  /** A meter for one Register stream: `readable` is paused/resumed, `held` measures its held response bytes. */
  meter(readable: { pause(): unknown; resume(): unknown }, held: () => number): StreamMeter {
    const m = new StreamMeter(this, readable, held);
    this.meters.add(m);
    return m;
  }

  /** Streams not being read now. */
  get pausedStreams(): number {
    let n = 0;
    for (const m of this.meters) if (m.paused) n++;
    return n;
  }

  /** @internal */
  remove(m: StreamMeter): void {
    this.meters.delete(m);
    this.held -= m.lastHeld;
    m.lastHeld = 0;
    this.queued -= m.queued;
  }

  /** @internal A meter paused: re-check paused meters until none is. */
  watch(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      let any = false;
      for (const m of this.meters) if (m.paused) any = m.evaluate() || any;
      // Below the router-wide bound again: streams paused only for it may read.
      if (!any) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    }, RECHECK_MS);
    this.timer.unref();
  }
}

export class StreamMeter {
  /** Frame bytes written to the stream and not yet taken by HTTP/2. */
  queued = 0;
  paused = false;
  /** Why reading stopped: the peer's own unread frames, or responses its clients have not taken. */
  reason: "queue" | "held" | undefined;
  /** Since when the queue has been over its bound (0: it is not). */
  private queueOverSince = 0;
  /** @internal */
  lastHeld = 0;
  private closed = false;

  constructor(
    private readonly budget: RouterByteBudget,
    private readonly readable: { pause(): unknown; resume(): unknown },
    private readonly held: () => number,
  ) {}

  /** Writes one message to the stream, counting it as queued until HTTP/2 took it. */
  write(stream: { write(chunk: Buffer, cb: () => void): unknown }, message: Buffer): void {
    const n = message.length;
    this.queued += n;
    this.budget.queued += n;
    stream.write(message, () => {
      this.queued -= n;
      if (!this.closed) this.budget.queued -= n;
      if (this.paused && this.reason === "queue") this.evaluate();
    });
  }

  /** After a message was read: stops reading when a bound is crossed. */
  afterRead(): void {
    this.evaluate();
  }

  /** Measures and pauses or resumes reading; true while paused. */
  evaluate(): boolean {
    if (this.closed) return false;
    const b = this.budget.bounds;
    const h = this.held();
    this.budget.held += h - this.lastHeld;
    this.lastHeld = h;
    const queueOver = this.queued > b.queuedBytesPerStream;
    // Router-wide queue pressure pauses the streams that add to it; one whose queue does
    // not drain (its instance does not read) is dropped like one over its own bound.
    const routerQueueOver = this.queued > 0 && this.budget.queued > b.routerQueuedBytes;
    if ((queueOver || routerQueueOver) && this.queueOverSince === 0) this.queueOverSince = this.budget.now();
    if (!queueOver && !routerQueueOver) this.queueOverSince = 0;
    const heldOver = h > b.streamBufferBytes || (h > 0 && this.budget.held > b.routerBufferBytes);
    const over = queueOver || heldOver || routerQueueOver;
    if (over && !this.paused) {
      this.paused = true;
      this.readable.pause();
      this.budget.watch();
    } else if (!over && this.paused) {
      this.paused = false;
      this.readable.resume();
    }
    this.reason = queueOver || routerQueueOver ? "queue" : heldOver ? "held" : undefined;
    return this.paused;
  }

  /**
   * A reason to drop the stream: its instance has not read what the router sent for
   * `timeoutMs` while the queue stayed over its bound. Undefined otherwise.
   */
  stalled(now: number, timeoutMs: number): string | undefined {
    this.evaluate();
    if (this.queueOverSince === 0 || now - this.queueOverSince < timeoutMs) return undefined;
    const b = this.budget.bounds;
    return `the instance does not read its Register stream (${this.queued} bytes queued for it for ${now - this.queueOverSince} ms; bounds ${b.queuedBytesPerStream} per stream, ${b.routerQueuedBytes} in all)`;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.paused = false;
    this.budget.remove(this);
  }
}
