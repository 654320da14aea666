// How many streams each HTTP/2 session carries now, so that the connection of a peer the
// router gave up on (silent past its heartbeat timeout, or replaced by its own reconnect)
// can be closed when nothing else uses it. Without this such a connection lingers until
// TCP gives up or the server's keepalive (2 h by default) finds it dead: the status sent
// to a dead peer is never acknowledged, so its stream never closes on its own.
import type * as http2 from "node:http2";

const OPEN = Symbol("grpcrouter.openStreams");
const SESSION = Symbol("grpcrouter.session");
type CountedSession = http2.Http2Session & { [OPEN]?: number };
const ON_CLOSE = Symbol("grpcrouter.onClose");
type TrackedStream = http2.Http2Stream & { [SESSION]?: CountedSession; [ON_CLOSE]?: (this: http2.Http2Stream) => void };

/** How long an abandoned connection has to deliver its last frames before it is destroyed. */
export const ABANDON_GRACE_MS = 1000;

// One listener shared by every stream (node clears `stream.session` before 'close').
function onTrackedClose(this: TrackedStream): void {
  const session = this[SESSION];
  if (session) {
    this[SESSION] = undefined;
    session[OPEN] = (session[OPEN] ?? 1) - 1;
  }
  this[ON_CLOSE]?.();
}

/** Counts `stream` on its session until it closes. */
export function trackStream(stream: http2.Http2Stream): void {
  const session = stream.session as CountedSession | undefined;
  if (!session) return;
  session[OPEN] = (session[OPEN] ?? 0) + 1;
  (stream as TrackedStream)[SESSION] = session;
  stream.on("close", onTrackedClose); // `on`, not `once`: once() wraps the listener in a closure per stream
}

/**
 * Runs `listener` (with the stream as `this`) when `stream` closes: through the 'close'
 * listener trackStream added when there is one (a second listener makes node copy the
 * listener array on every close), else as a listener of its own.
 */
export function onStreamClosed<S extends http2.Http2Stream>(stream: S, listener: (this: S) => void): void {
  const tracked = stream as unknown as TrackedStream;
  if (tracked[SESSION] && tracked[ON_CLOSE] === undefined) tracked[ON_CLOSE] = listener as (this: http2.Http2Stream) => void;
  else stream.on("close", listener);
}

/**
 * The peer of `stream` is gone: when its session carries no other stream, send GOAWAY and
 * destroy the session after `graceMs` (a peer that is alive after all gets the last frames
 * and opens a new connection). A session with other streams is left alone.
 */
export function closeSessionIfOnly(stream: http2.Http2Stream, graceMs = ABANDON_GRACE_MS): boolean {
  const tracked = stream as TrackedStream;
  const session = tracked[SESSION] ?? (stream.session as CountedSession | undefined);
  if (!session || session.destroyed || session.closed) return false;
  const others = (session[OPEN] ?? 0) - (tracked[SESSION] ? 1 : 0);
  if (others > 0) return false;
  const timer = setTimeout(() => session.destroy(), graceMs);
  timer.unref();
  session.once("close", () => clearTimeout(timer));
  try {
    session.close();
  } catch {
    session.destroy();
  }
  return true;
}
