// Metadata crosses the tunnel as MetadataEntry { key, bytes value }: binary (`-bin`) values
// as their raw bytes, text values as UTF-8, one entry per value so repeated keys keep order.
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { MetadataEntrySchema, type MetadataEntry } from "../gen/grpcrouter/v1/tunnel_pb.js";

const isBin = (key: string) => key.endsWith("-bin");

/** Keys owned by the transport on either side; never forwarded. */
const TRANSPORT_KEYS = new Set([
  "content-type",
  "te",
  "grpc-timeout",
  "grpc-encoding",
  "grpc-accept-encoding",
  "accept-encoding",
  "content-length",
  "grpc-status",
  "grpc-message",
  "grpc-status-details-bin",
]);

export function isTransportKey(key: string): boolean {
  return TRANSPORT_KEYS.has(key) || key.startsWith(":");
}

export function entriesFromMetadata(md: grpc.Metadata | undefined): MetadataEntry[] {
  const out: MetadataEntry[] = [];
  if (!md) return out;
  const map = md.toJSON() as Record<string, Array<string | Buffer>>;
  for (const key of Object.keys(map)) {
    if (isTransportKey(key)) continue;
    for (const v of map[key]!) {
      out.push(create(MetadataEntrySchema, { key, value: typeof v === "string" ? Buffer.from(v, "utf8") : v }));
    }
  }
  return out;
}

/** Builds grpc-js Metadata; entries grpc-js refuses (bad key or value bytes) are skipped and reported. */
export function metadataFromEntries(entries: readonly MetadataEntry[], onBad?: (key: string, why: string) => void): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const e of entries) {
    const key = e.key.toLowerCase();
    if (isTransportKey(key)) continue;
    try {
      if (isBin(key)) md.add(key, Buffer.from(e.value.buffer, e.value.byteOffset, e.value.byteLength));
      else md.add(key, Buffer.from(e.value.buffer, e.value.byteOffset, e.value.byteLength).toString("utf8"));
    } catch (err) {
      onBad?.(key, (err as Error).message);
    }
  }
  return md;
}

/** grpc-js Metadata → fetch Headers, the way Connect represents them (`-bin` as base64). */
export function headersFromMetadata(md: grpc.Metadata): Headers {
  const h = new Headers();
  const map = md.toJSON() as Record<string, Array<string | Buffer>>;
  for (const key of Object.keys(map)) {
    if (isTransportKey(key)) continue;
    for (const v of map[key]!) {
      try {
        h.append(key, typeof v === "string" ? v : Buffer.from(v).toString("base64"));
      } catch {
        // A value fetch Headers refuses (control characters) cannot reach a Connect handler.
      }
    }
  }
  return h;
}

/** fetch Headers → grpc-js Metadata; `-bin` values are base64 (several joined by ","). */
export function metadataFromHeaders(h: Headers | undefined, into = new grpc.Metadata()): grpc.Metadata {
  if (!h) return into;
  h.forEach((value, key) => {
    if (isTransportKey(key)) return;
    try {
      addHeaderValue(into, key, value);
    } catch {
      // grpc-js refuses the key or value; a direct gRPC server could not send it either.
    }
  });
  return into;
}

/**
 * Adds one header field's value to `md` as gRPC metadata: a `-bin` value is base64 (padded or
 * not; a value holding several is split at ","). Throws where grpc-js' Metadata refuses the key.
 */
export function addHeaderValue(md: grpc.Metadata, key: string, value: string): void {
  if (isBin(key)) {
    for (const part of value.split(",")) md.add(key, Buffer.from(part.trim(), "base64"));
  } else md.add(key, value);
}
