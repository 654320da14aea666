// gRPC status codes as the grpc_code label spells them: the names of Go's codes.Code, which
// go-grpc-prometheus (and so most gRPC dashboards and alerts) use.
const NAMES = [
  "OK",
  "Canceled",
  "Unknown",
  "InvalidArgument",
  "DeadlineExceeded",
  "NotFound",
  "AlreadyExists",
  "PermissionDenied",
  "ResourceExhausted",
  "FailedPrecondition",
  "Aborted",
  "OutOfRange",
  "Unimplemented",
  "Internal",
  "Unavailable",
  "DataLoss",
  "Unauthenticated",
] as const;

/** The grpc_code label of a status code; a code outside 0..16 is "Unknown" (bounded labels). */
export function grpcCodeName(code: number): string {
  return NAMES[code] ?? "Unknown";
}

/** The grpc_type label of a call kind, as go-grpc-prometheus names the four kinds. */
export function grpcTypeName(kind: string | undefined): string {
  switch (kind) {
    case "unary":
      return "unary";
    case "server_streaming":
      return "server_stream";
    case "client_streaming":
      return "client_stream";
    case "bidi_streaming":
      return "bidi_stream";
    default:
      return "unknown";
  }
}
