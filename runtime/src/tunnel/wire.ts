// Protobuf wire-format primitives the frame codec needs: varints and tags. Hand-written
// because the router splices payload bytes into frames instead of building messages.

export const WIRE_VARINT = 0;
export const WIRE_I64 = 1;
export const WIRE_LEN = 2;
export const WIRE_I32 = 5;

/** Thrown for bytes that are not a well-formed frame message. */
export class FrameError extends Error {
  override name = "FrameError";
}

/** Bytes a varint of `n` (0 <= n <= 2^53) takes. */
export function varintSize(n: number): number {
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x200000) return 3;
  if (n < 0x10000000) return 4;
  let size = 4;
  n = Math.floor(n / 0x10000000);
  while (n > 0) {
    size++;
    n = Math.floor(n / 0x80);
  }
  return size;
}

/** Writes the varint of `n` at `pos`; returns the position after it. */
export function writeVarint(buf: Uint8Array, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n = n < 0x80000000 ? n >>> 7 : Math.floor(n / 0x80);
  }
  buf[pos++] = n;
  return pos;
}

/** Zero bytes, shared (a Buffer, as views of a received Buffer are). */
const NO_BYTES: Uint8Array = Buffer.alloc(0);

/**
 * A cursor over one message's bytes. Reads throw FrameError on truncation or overflow, so a
 * hostile peer's bytes end in one catch, never in an out-of-range read.
 */
export class WireReader {
  pos: number;
  constructor(
    readonly buf: Uint8Array,
    start = 0,
    public end = buf.length,
  ) {
    this.pos = start;
  }

  /** Reads `buf` from `start` to `end` now (one reader for many frames of a message). */
  range(start: number, end: number): this {
    this.pos = start;
    this.end = end;
    return this;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  /** A varint as a number; values above 2^53 are refused (call ids never get there). */
  varint(): number {
    const buf = this.buf;
    let pos = this.pos;
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= this.end) throw new FrameError("truncated varint");
      const b = buf[pos++]!;
      result += (b & 0x7f) * mul;
      if (b < 0x80) {
        if (result > Number.MAX_SAFE_INTEGER) throw new FrameError("varint too large");
        this.pos = pos;
        return result;
      }
      mul *= 128;
    }
    throw new FrameError("malformed varint");
  }

  /** The bytes of a length-delimited field, as a view (no copy); an empty field is one shared empty Buffer. */
  bytes(): Uint8Array {
    const len = this.varint();
    const start = this.pos;
    if (len > this.end - start) throw new FrameError(`length ${len} runs past the end of the message`);
    this.pos = start + len;
    // Empty fields are common (HalfClose, an OK Trailers): no view each.
    return len === 0 ? NO_BYTES : this.buf.subarray(start, start + len);
  }

  skip(wireType: number): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_I64:
        this.advance(8);
        return;
      case WIRE_LEN:
        this.bytes();
        return;
      case WIRE_I32:
        this.advance(4);
        return;
      default:
        throw new FrameError(`unsupported wire type ${wireType}`);
    }
  }

  private advance(n: number): void {
    if (this.end - this.pos < n) throw new FrameError("truncated field");
    this.pos += n;
  }
}
