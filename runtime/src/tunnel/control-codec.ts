// Hand-written encoders and decoders of the control frames every call sends (Open, Headers,
// Trailers, WindowUpdate), used instead of protobuf-es's reflection-driven toBinary/fromBinary:
// those were a visible share of both ends' CPU per call. Only the common shape takes the
// fast path: an encoder meets a message exactly as `create()` builds it; a decoder meets
// known fields, their usual wire types and ASCII strings. Anything else (unknown fields, a
// non-ASCII string, a varint beyond its type) goes to protobuf-es, so the bytes and the
// decoded messages are always exactly protobuf-es's (frames.test.ts compares both ways).
import { fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import type { Duration } from "@bufbuild/protobuf/wkt";
import {
  HeadersSchema,
  OpenSchema,
  TrailersSchema,
  WindowUpdateSchema,
  type Headers,
  type MetadataEntry,
  type Open,
  type Trailers,
  type WindowUpdate,
} from "../gen/grpcrouter/v1/tunnel_pb.js";
import { varintSize, writeVarint } from "./wire.js";

const EMPTY: Uint8Array = new Uint8Array(0);

/** toBinary(schema, message), without reflection for the hot control frames. */
export function encodeControl<D extends DescMessage>(schema: D, message: MessageShape<D>): Uint8Array {
  const fast = encodeFast(schema, message);
  return fast ?? toBinary(schema, message);
}

/** fromBinary(schema, body), without reflection for the hot control frames in their usual shape. */
export function decodeControlFast<D extends DescMessage>(schema: D, body: Uint8Array): MessageShape<D> {
  const fast = decodeFast(schema, body);
  return (fast ?? fromBinary(schema, body)) as MessageShape<D>;
}

// ---- encoding ----

function encodeFast(schema: DescMessage, m: unknown): Uint8Array | undefined {
  if ((m as { $unknown?: unknown }).$unknown !== undefined) return undefined;
  switch (schema) {
    case OpenSchema:
      return encodeOpen(m as Open);
    case TrailersSchema:
      return encodeTrailers(m as Trailers);
    case HeadersSchema:
      return encodeHeaders(m as Headers);
    case WindowUpdateSchema: {
      const n = (m as WindowUpdate).bytes;
      if (n === 0) return EMPTY;
      const out = new Uint8Array(1 + varintSize(n));
      out[0] = 0x08;
      writeVarint(out, 1, n);
      return out;
    }
    default:
      return undefined;
  }
}

/** Length of a length-delimited field (tag < 16, so one byte) holding `len` bytes. */
const lenField = (len: number) => 1 + varintSize(len) + len;

function entriesSize(entries: readonly MetadataEntry[]): number | undefined {
  let n = 0;
  for (const e of entries) {
    if (e.$unknown !== undefined) return undefined;
    n += lenField(entrySize(e));
  }
  return n;
}

function entrySize(e: MetadataEntry): number {
  return strSize(e.key) + (e.value.length > 0 ? lenField(e.value.length) : 0);
}

/** Bytes of `s` in UTF-8: its length when it is ASCII (names, paths, addresses), else counted. */
function utf8Length(s: string): number {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return Buffer.byteLength(s);
  return s.length;
}

class Out {
  readonly buf: Buffer;
  pos = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }
  tag(byte: number): void {
    this.buf[this.pos++] = byte;
  }
  varint(n: number): void {
    this.pos = writeVarint(this.buf, this.pos, n);
  }
  string(tag: number, s: string): void {
    if (s.length === 0) return;
    const len = utf8Length(s);
    this.tag(tag);
    this.varint(len);
    if (len !== s.length) {
      this.pos += this.buf.write(s, this.pos, len, "utf8");
      return;
    }
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < len; i++) buf[p++] = s.charCodeAt(i);
    this.pos = p;
  }
  bytes(tag: number, b: Uint8Array): void {
    if (b.length === 0) return;
    this.tag(tag);
    this.varint(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  entries(tag: number, entries: readonly MetadataEntry[]): void {
    for (const e of entries) {
      this.tag(tag);
      this.varint(entrySize(e));
      this.string(0x0a, e.key);
      this.bytes(0x12, e.value);
    }
  }
}

function strSize(s: string): number {
  return s.length === 0 ? 0 : lenField(utf8Length(s));
}

function encodeOpen(m: Open): Uint8Array | undefined {
  const md = entriesSize(m.metadata);
  if (md === undefined) return undefined;
  let timeout = 0;
  const t = m.timeout;
  if (t !== undefined) {
    // Negative or huge durations (never a router's) are left to protobuf-es.
    if (t.$unknown !== undefined || t.seconds < 0n || t.seconds > BigInt(Number.MAX_SAFE_INTEGER) || t.nanos < 0) return undefined;
    timeout = lenField(durationSize(t));
  }
  const out = new Out(strSize(m.method) + md + timeout + strSize(m.peer));
  out.string(0x0a, m.method);
  out.entries(0x12, m.metadata);
  if (t !== undefined) {
    out.tag(0x1a);
    out.varint(durationSize(t));
    if (t.seconds !== 0n) {
      out.tag(0x08);
      out.varint(Number(t.seconds));
    }
    if (t.nanos !== 0) {
      out.tag(0x10);
      out.varint(t.nanos);
    }
  }
  out.string(0x22, m.peer);
  return out.buf;
}

function durationSize(t: Duration): number {
  return (t.seconds !== 0n ? 1 + varintSize(Number(t.seconds)) : 0) + (t.nanos !== 0 ? 1 + varintSize(t.nanos) : 0);
}

function encodeTrailers(m: Trailers): Uint8Array | undefined {
  const md = entriesSize(m.metadata);
  if (md === undefined) return undefined;
  const code = m.code;
  if (!Number.isInteger(code) || code < 0 || code > 0xffffffff) return undefined;
  const size = (code !== 0 ? 1 + varintSize(code) : 0) + strSize(m.message) + (m.details.length > 0 ? lenField(m.details.length) : 0) + md;
  if (size === 0) return EMPTY; // an OK status with nothing else: the usual end of a call
  const out = new Out(size);
  if (code !== 0) {
    out.tag(0x08);
    out.varint(code);
  }
  out.string(0x12, m.message);
  out.bytes(0x1a, m.details);
  out.entries(0x22, m.metadata);
  return out.buf;
}

function encodeHeaders(m: Headers): Uint8Array | undefined {
  const md = entriesSize(m.metadata);
  if (md === undefined) return undefined;
  if (md === 0) return EMPTY;
  const out = new Out(md);
  out.entries(0x0a, m.metadata);
  return out.buf;
}

// ---- decoding ----

/** A cursor that gives up (returns undefined / sets `bad`) instead of throwing: the slow path decides. */
class In {
  pos = 0;
  bad = false;
  constructor(
    readonly buf: Uint8Array,
    readonly end = buf.length,
  ) {}
  get done(): boolean {
    return this.bad || this.pos >= this.end;
  }
  /** A varint of at most 32 bits (5 bytes, value < 2^32); anything else is `bad`. */
  varint32(): number {
    if (this.pos < this.end && this.buf[this.pos]! < 0x80) return this.buf[this.pos++]!; // tags, small numbers
    let result = 0;
    let shift = 0;
    while (this.pos < this.end && shift < 35) {
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) {
        if (result > 0xffffffff) break;
        return result;
      }
      shift += 7;
    }
    this.bad = true;
    return 0;
  }
  /** A length-delimited field's bytes, as a view. */
  bytes(): Uint8Array {
    const len = this.varint32();
    if (this.bad || len > this.end - this.pos) {
      this.bad = true;
      return EMPTY;
    }
    const start = this.pos;
    this.pos += len;
    return this.buf.subarray(start, this.pos);
  }
  /** An ASCII string; any other byte is `bad` (protobuf-es then checks the UTF-8 its way). */
  ascii(): string {
    // Read in place: no view of the bytes unless a new string has to be made of them.
    const len = this.varint32();
    if (this.bad || len > this.end - this.pos) {
      this.bad = true;
      return "";
    }
    const buf = this.buf;
    const start = this.pos;
    const end = start + len;
    let hash = len;
    for (let i = start; i < end; i++) {
      const c = buf[i]!;
      if (c >= 0x80) {
        this.bad = true;
        return "";
      }
      hash = (Math.imul(hash, 31) + c) | 0;
    }
    this.pos = end;
    if (len === 0) return "";
    if (len <= INTERN_MAX) return interned(buf, start, len, hash);
    const b = buf.subarray(start, end);
    return (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.length)).toString("latin1");
  }
}

/**
 * Short strings recently decoded, by hash: the method path, the peer address and metadata
 * keys of one call are those of the call before, most of the time, and reusing the string
 * saves making it again (a visible share of what a call allocates). A miss just replaces
 * the slot, so hostile input only makes misses.
 */
const INTERN_MAX = 64;
const INTERN_SLOTS = 64;
const internedStrings: string[] = new Array<string>(INTERN_SLOTS).fill("");

/** The ASCII string of `buf[start, start + len)`, whose hash is `hash`. */
function interned(buf: Uint8Array, start: number, len: number, hash: number): string {
  const slot = hash & (INTERN_SLOTS - 1);
  const known = internedStrings[slot]!;
  if (known.length === len) {
    let i = 0;
    while (i < len && known.charCodeAt(i) === buf[start + i]) i++;
    if (i === len) return known;
  }
  const made = String.fromCharCode.apply(null, buf.subarray(start, start + len) as unknown as number[]);
  internedStrings[slot] = made;
  return made;
}

function decodeFast(schema: DescMessage, body: Uint8Array): unknown {
  switch (schema) {
    case OpenSchema:
      return decodeOpen(body);
    case TrailersSchema:
      return decodeTrailers(body);
    case HeadersSchema: {
      const r = new In(body);
      const metadata: MetadataEntry[] = [];
      while (!r.done) {
        if (r.varint32() !== 0x0a) return undefined;
        const e = decodeEntry(r);
        if (!e) return undefined;
        metadata.push(e);
      }
      return r.bad ? undefined : { $typeName: HeadersSchema.typeName, metadata };
    }
    case WindowUpdateSchema: {
      const r = new In(body);
      let bytes = 0;
      while (!r.done) {
        if (r.varint32() !== 0x08) return undefined;
        bytes = r.varint32();
      }
      return r.bad ? undefined : { $typeName: WindowUpdateSchema.typeName, bytes };
    }
    default:
      return undefined;
  }
}

function decodeEntry(r: In): MetadataEntry | undefined {
  const inner = r.bytes();
  if (r.bad) return undefined;
  const e = new In(inner);
  let key = "";
  let value: Uint8Array = EMPTY;
  while (!e.done) {
    const tag = e.varint32();
    if (tag === 0x0a) key = e.ascii();
    else if (tag === 0x12) value = e.bytes();
    else return undefined;
  }
  return e.bad ? undefined : { $typeName: "grpcrouter.v1.MetadataEntry", key, value };
}

function decodeOpen(body: Uint8Array): Open | undefined {
  const r = new In(body);
  let method = "";
  let peer = "";
  const metadata: MetadataEntry[] = [];
  let timeout: Duration | undefined;
  while (!r.done) {
    switch (r.varint32()) {
      case 0x0a:
        method = r.ascii();
        break;
      case 0x12: {
        const e = decodeEntry(r);
        if (!e) return undefined;
        metadata.push(e);
        break;
      }
      case 0x1a: {
        // A repeated message field merges into the one before (protobuf-es does too): only one is usual.
        if (timeout !== undefined) return undefined;
        const d = new In(r.bytes());
        let seconds = 0;
        let nanos = 0;
        while (!d.done) {
          const tag = d.varint32();
          if (tag === 0x08) seconds = d.varint32();
          else if (tag === 0x10) nanos = d.varint32();
          else return undefined;
        }
        // Negative nanos (a 10-byte varint) or huge seconds go to protobuf-es.
        if (d.bad || nanos > 0x7fffffff) return undefined;
        timeout = { $typeName: "google.protobuf.Duration", seconds: BigInt(seconds), nanos };
        break;
      }
      case 0x22:
        peer = r.ascii();
        break;
      default:
        return undefined;
    }
  }
  if (r.bad) return undefined;
  const open: Open = { $typeName: OpenSchema.typeName, method, metadata, peer };
  if (timeout !== undefined) open.timeout = timeout;
  return open;
}

function decodeTrailers(body: Uint8Array): Trailers | undefined {
  const r = new In(body);
  let code = 0;
  let message = "";
  let details: Uint8Array = EMPTY;
  const metadata: MetadataEntry[] = [];
  while (!r.done) {
    switch (r.varint32()) {
      case 0x08:
        code = r.varint32();
        break;
      case 0x12:
        message = r.ascii();
        break;
      case 0x1a:
        details = r.bytes();
        break;
      case 0x22: {
        const e = decodeEntry(r);
        if (!e) return undefined;
        metadata.push(e);
        break;
      }
      default:
        return undefined;
    }
  }
  return r.bad ? undefined : { $typeName: TrailersSchema.typeName, code, message, details, metadata };
}
