// One message limit, agreed everywhere. A payload travels inside a Register message with a
// frame header around it (call id, field tag, length: a few bytes; a batch adds nothing to
// a lone big frame, since batches are cut at 1 MiB). So a server carrying Register streams
// must accept maxMessageBytes + FRAME_OVERHEAD_BYTES, or a valid maximal response (4 MiB
// minus a few bytes) closes the instance's whole Register stream and fails every call on it.
// Within that, the router checks each message against maxMessageBytes itself: an oversized
// message fails only its own call, RESOURCE_EXHAUSTED naming the size and the limit.
import type * as grpc from "@grpc/grpc-js";

export const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
/** Room for frame headers (and a batch's other frames) around a payload of the largest size. */
export const FRAME_OVERHEAD_BYTES = 64 * 1024;

/** What a grpc-js server carrying a router must accept: a payload plus its frame. */
export function registerReceiveLimit(maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES): number {
  return maxMessageBytes + FRAME_OVERHEAD_BYTES;
}

/**
 * Options for a grpc-js Server that carries routers (`new grpc.Server(routerServerOptions())`,
 * then `router.addTo(server)`): the receive limit with frame overhead, no send limit (the
 * router checks sizes itself), no channelz (the admin hub counts calls already).
 */
export function routerServerOptions(maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES): grpc.ServerOptions {
  return {
    "grpc.max_receive_message_length": registerReceiveLimit(maxMessageBytes),
    "grpc.max_send_message_length": -1,
    "grpc.enable_channelz": 0,
  };
}

/** Why a message of `size` bytes is refused, or undefined when it is within `limit`. */
export function oversized(what: "request" | "response", size: number, limit: number): string | undefined {
  return size > limit ? `${what} message of ${size} bytes is larger than the limit of ${limit} bytes` : undefined;
}

/**
 * For `addTo(server)`: a warning when the server's receive limit (read from grpc-js's options;
 * 4 MiB when unset) is below what Register streams need, else undefined.
 */
export function receiveLimitWarning(server: grpc.Server, maxMessageBytes: number): string | undefined {
  const configured = (server as unknown as { options?: Record<string, unknown> }).options?.["grpc.max_receive_message_length"];
  const limit = typeof configured === "number" ? configured : DEFAULT_MAX_MESSAGE_BYTES;
  const needed = registerReceiveLimit(maxMessageBytes);
  if (limit < 0 || limit >= needed) return undefined;
  return `the server's grpc.max_receive_message_length (${limit}) is below maxMessageBytes + frame overhead (${needed}): a response near maxMessageBytes would close its instance's Register stream; create the server with routerServerOptions(maxMessageBytes)`;
}
