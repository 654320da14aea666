// One message limit, agreed everywhere. A payload travels inside a Register message with a
// frame header around it (call id, field tag, length: a few bytes; a batch adds nothing to
// a lone big frame, since batches are cut at 1 MiB). So a server carrying Register streams
// must accept maxMessageBytes + FRAME_OVERHEAD_BYTES, or a valid maximal response (4 MiB
// minus a few bytes) closes the instance's whole Register stream and fails every call on it.
// Within that, the router checks each message against maxMessageBytes itself: an oversized
// message fails only its own call, RESOURCE_EXHAUSTED naming the size and the limit.

export const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
/** Room for frame headers (and a batch's other frames) around a payload of the largest size. */
export const FRAME_OVERHEAD_BYTES = 64 * 1024;

/** What a server carrying Register streams must accept in one message: a payload plus its frame. */
export function registerReceiveLimit(maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES): number {
  return maxMessageBytes + FRAME_OVERHEAD_BYTES;
}

/** Why a message of `size` bytes is refused, or undefined when it is within `limit`. */
export function oversized(what: "request" | "response", size: number, limit: number): string | undefined {
  return size > limit ? `${what} message of ${size} bytes is larger than the limit of ${limit} bytes` : undefined;
}
