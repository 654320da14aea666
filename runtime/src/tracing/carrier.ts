// Reading trace context out of a call's metadata, as the router published it to the hub.
// The router hands the hub grpc-js Metadata; other publishers may hand plain records or
// entries (see MetadataInput). The getter reads all of them without copying grpc-js Metadata,
// because extraction runs once per call on the router's traffic path.
import type { TextMapGetter } from "@opentelemetry/api";
import type { MetadataInput } from "../admin/metadata.js";

type MetadataValue = string | Uint8Array;

interface GrpcMetadataLike {
  get(key: string): MetadataValue[];
  getMap(): Record<string, MetadataValue>;
}

const isGrpcMetadata = (m: unknown): m is GrpcMetadataLike =>
  typeof (m as GrpcMetadataLike).get === "function" && typeof (m as GrpcMetadataLike).getMap === "function";

/** Text values only: trace headers are never binary (-bin) metadata. */
function texts(values: ReadonlyArray<MetadataValue>): string[] | undefined {
  const out: string[] = [];
  for (const v of values) if (typeof v === "string") out.push(v);
  return out.length === 0 ? undefined : out;
}

function one(values: string[] | undefined): string | string[] | undefined {
  return values && values.length === 1 ? values[0] : values;
}

/** Plain records and entry lists, lower-cased once (gRPC metadata keys are case-insensitive). */
function normalize(input: Exclude<MetadataInput, GrpcMetadataLike>): Map<string, MetadataValue[]> {
  const map = new Map<string, MetadataValue[]>();
  const add = (key: string, v: MetadataValue | ReadonlyArray<MetadataValue>) => {
    const k = key.toLowerCase();
    let list = map.get(k);
    if (!list) map.set(k, (list = []));
    if (typeof v === "string" || v instanceof Uint8Array) list.push(v);
    else list.push(...v);
  };
  if (typeof (input as { toJSON?: unknown }).toJSON === "function") {
    for (const [k, v] of Object.entries((input as { toJSON(): Record<string, ReadonlyArray<MetadataValue>> }).toJSON())) add(k, v);
  } else if (typeof (input as Iterable<unknown>)[Symbol.iterator] === "function") {
    for (const [k, v] of input as Iterable<readonly [string, MetadataValue]>) add(k, v);
  } else {
    for (const [k, v] of Object.entries(input as Record<string, MetadataValue | ReadonlyArray<MetadataValue>>)) add(k, v);
  }
  return map;
}

/** The carrier handed to the propagator: grpc-js Metadata as is, anything else normalized. */
export type MetadataCarrier = GrpcMetadataLike | Map<string, MetadataValue[]>;

export function carrierOf(input: MetadataInput | undefined): MetadataCarrier | undefined {
  if (input === undefined) return undefined;
  return isGrpcMetadata(input) ? input : normalize(input as Exclude<MetadataInput, GrpcMetadataLike>);
}

export const metadataGetter: TextMapGetter<MetadataCarrier> = {
  get(carrier, key) {
    const k = key.toLowerCase();
    return one(texts(carrier instanceof Map ? (carrier.get(k) ?? []) : carrier.get(k)));
  },
  keys(carrier) {
    return carrier instanceof Map ? [...carrier.keys()] : Object.keys(carrier.getMap());
  },
};
