// Batching: under load, frames produced during one event-loop turn leave in one Register
// message, so many calls share one write (and one HTTP/2 DATA frame) instead of one each.
// But a lone call should not wait for the end of the turn: the first frames of a turn leave
// as soon as the code that queued them (and its microtasks) is done (process.nextTick);
// whatever is queued later in the same turn waits for its end (setImmediate) and leaves
// together. So a turn costs at most two writes, and an idle stream adds no wait.
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { encodeControl } from "./control-codec.js";
import { FrameEncoder } from "./frames.js";

export class FrameSender {
  private readonly encoder = new FrameEncoder();
  private scheduled = false;
  private closed = false;

  /**
   * `write` gets one encoded Register message per flush. A batch is cut at `maxBatchBytes`
   * (default 1 MiB) so that a message never grows past the peer's receive limit; a single
   * frame larger than that goes alone.
   */
  constructor(
    private readonly write: (message: Buffer) => void,
    private readonly maxBatchBytes = 1024 * 1024,
  ) {}

  /** A payload or already-encoded control frame. */
  send(call: number, field: number, body: Uint8Array): void {
    if (this.closed) return;
    if (this.encoder.count > 0 && this.encoder.size + body.length > this.maxBatchBytes) this.flush();
    this.encoder.add(call, field, body);
    this.schedule();
  }

  control<D extends DescMessage>(call: number, field: number, schema: D, message: MessageShape<D>): void {
    if (this.closed) return;
    this.send(call, field, encodeControl(schema, message));
  }

  /** Writes what is queued now (used before ending a stream). */
  flush(): void {
    if (this.closed || this.encoder.count === 0) return;
    this.write(this.encoder.take());
  }

  /** Drops anything queued; later sends are ignored. */
  close(): void {
    this.closed = true;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    if (this.busyTurn) setImmediate(this.flushAtEndOfTurn);
    else process.nextTick(this.flushNow);
  }

  /** A flush already happened in this turn: more frames wait for its end. */
  private busyTurn = false;

  private readonly flushNow = (): void => {
    this.scheduled = false;
    this.flush();
    if (!this.busyTurn) {
      this.busyTurn = true;
      setImmediate(this.endTurn);
    }
  };

  private readonly flushAtEndOfTurn = (): void => {
    this.scheduled = false;
    this.flush();
  };

  private readonly endTurn = (): void => {
    this.busyTurn = false;
  };
}
