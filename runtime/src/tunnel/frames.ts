// The frame codec. A Register message is `repeated Frame frames = 1`, a frame is
// `uint64 call = 1` plus one oneof field (see proto/grpcrouter/v1/tunnel.proto). The router
// never decodes a payload: it splices the client's request bytes into a frame as
// tag + length + bytes, and slices response payloads out the same way. Control frames are
// ordinary protobuf-es messages. The bytes produced are exactly what protobuf-es would
// encode for the typed frame message (tested against the generated code).
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { decodeControlFast, encodeControl } from "./control-codec.js";
import { FrameError, WIRE_LEN, WIRE_VARINT, WireReader, varintSize, writeVarint } from "./wire.js";

/** Control frame field numbers, router -> instance. */
export const RouterFrame = {
  Welcome: 2,
  Open: 3,
  HalfClose: 4,
  Cancel: 5,
  WindowUpdate: 6,
  Ping: 7,
  Pong: 8,
  Drain: 9,
} as const;

/** Control frame field numbers, instance -> router. */
export const InstanceFrame = {
  Hello: 2,
  Headers: 3,
  Trailers: 4,
  WindowUpdate: 5,
  Ping: 6,
  Pong: 7,
  Drain: 8,
  Health: 9,
} as const;

/** Method payload fields start here; 10..15 are reserved for future control frames. */
export const FIRST_METHOD_FIELD = 16;

/** One decoded frame: `body` is the raw bytes of its oneof field (a view, not a copy). */
export interface Frame {
  call: number;
  /** The oneof field number; 0 when the frame carried none (ignored by both sides). */
  field: number;
  body: Uint8Array;
}

const EMPTY: Uint8Array = new Uint8Array(0);
/** Bodies up to this size are copied into the encoder's scratch with their header. */
const SMALL_BODY = 512;

/**
 * Walks a Register message and returns its frames. Unknown fields are skipped, as protobuf
 * parsers do, so a newer peer's additions do not break an older one; malformed bytes throw
 * FrameError.
 */
export function decodeFrames(message: Uint8Array): Frame[] {
  const frames: Frame[] = [];
  const outer = new WireReader(message);
  // One reader for every frame of the message (not one each).
  const inner = new WireReader(message);
  while (!outer.done) {
    const tag = outer.varint();
    const fieldNo = Math.floor(tag / 8);
    const wireType = tag & 7;
    if (fieldNo !== 1) {
      outer.skip(wireType);
      continue;
    }
    if (wireType !== WIRE_LEN) throw new FrameError(`frames field has wire type ${wireType}, expected 2`);
    // The frame is read in place (no view of its bytes): only its body becomes one.
    const len = outer.varint();
    const start = outer.pos;
    if (len > outer.end - start) throw new FrameError(`length ${len} runs past the end of the message`);
    outer.pos = start + len;
    frames.push(decodeFrame(inner.range(start, start + len)));
  }
  return frames;
}

function decodeFrame(r: WireReader): Frame {
  let call = 0;
  let field = 0;
  let body = EMPTY;
  while (!r.done) {
    const tag = r.varint();
    const fieldNo = Math.floor(tag / 8);
    const wireType = tag & 7;
    if (fieldNo === 0) throw new FrameError("field number 0");
    if (fieldNo === 1) {
      if (wireType !== WIRE_VARINT) throw new FrameError(`call field has wire type ${wireType}, expected 0`);
      call = r.varint();
    } else if (wireType === WIRE_LEN) {
      // Every oneof case is a message; as in protobuf, the last one seen wins.
      field = fieldNo;
      body = r.bytes();
    } else {
      r.skip(wireType);
    }
  }
  return { call, field, body };
}

/** Decodes a control frame's body, turning a protobuf-es error into a FrameError. */
export function decodeControl<D extends DescMessage>(schema: D, body: Uint8Array): MessageShape<D> {
  try {
    return decodeControlFast(schema, body);
  } catch (e) {
    throw new FrameError(`bad ${schema.typeName}: ${(e as Error).message}`);
  }
}

/**
 * Accumulates frames and produces one Register message. Headers are written into one
 * scratch buffer; payloads are kept as references and copied once, when the message is built.
 */
export class FrameEncoder {
  private parts: Uint8Array[] = [];
  private length = 0;
  // Small at first: an idle Register stream (one of 10,000) sends a Ping now and then; a busy
  // one outgrows it, doubling up to 4 KiB (newScratch), and keeps the larger one.
  private scratch = new Uint8Array(64);
  private scratchPos = 0;
  /** Where the scratch bytes not yet in `parts` begin: consecutive headers and small bodies
   *  become one part (a view each per frame was a visible allocation per call). */
  private segmentStart = 0;
  /** Frames since the last take(). */
  count = 0;

  get size(): number {
    return this.length;
  }

  /** Adds a frame whose oneof field `field` holds `body` (a message's bytes). */
  add(call: number, field: number, body: Uint8Array): void {
    const tag = field * 8 + WIRE_LEN;
    const inner = (call === 0 ? 0 : 1 + varintSize(call)) + varintSize(tag) + varintSize(body.length) + body.length;
    // Outer tag (field 1, LEN) + inner length + call + oneof tag + body length: <= 1+8+1+8+2+5.
    const small = body.length <= SMALL_BODY;
    const need = 32 + (small ? body.length : 0);
    if (this.scratch.length - this.scratchPos < need) this.newScratch(need);
    let p = this.scratchPos;
    const s = this.scratch;
    s[p++] = 0x0a;
    p = writeVarint(s, p, inner);
    if (call !== 0) {
      s[p++] = 0x08;
      p = writeVarint(s, p, call);
    }
    p = writeVarint(s, p, tag);
    p = writeVarint(s, p, body.length);
    if (small) {
      // Copied behind its header now (take() copies everything once anyway).
      s.set(body, p);
      p += body.length;
      this.length += p - this.scratchPos;
      this.scratchPos = p;
    } else {
      this.length += p - this.scratchPos;
      this.scratchPos = p;
      this.endSegment();
      this.push(body);
    }
    this.count++;
  }

  /** Adds a control frame: the message is encoded as protobuf-es would (control-codec.ts). */
  addControl<D extends DescMessage>(call: number, field: number, schema: D, message: MessageShape<D>): void {
    this.add(call, field, encodeControl(schema, message));
  }

  /** The message of every frame added since the last take(), and a reset encoder. */
  take(): Buffer {
    this.endSegment();
    const out = Buffer.allocUnsafe(this.length);
    let pos = 0;
    for (const part of this.parts) {
      out.set(part, pos);
      pos += part.length;
    }
    this.parts = [];
    this.length = 0;
    this.count = 0;
    // Header bytes already handed out live in `out` now; the scratch can be reused.
    this.scratchPos = 0;
    this.segmentStart = 0;
    return out;
  }

  private push(part: Uint8Array): void {
    this.parts.push(part);
    this.length += part.length;
  }

  /** The scratch bytes written since the last part become a part (already counted in `length`). */
  private endSegment(): void {
    if (this.scratchPos > this.segmentStart) this.parts.push(this.scratch.subarray(this.segmentStart, this.scratchPos));
    this.segmentStart = this.scratchPos;
  }

  private newScratch(need: number): void {
    // Parts still reference the old scratch; it stays alive until take().
    this.endSegment();
    // Doubling up to 4 KiB: one Welcome must not leave each of 10,000 idle streams 4 KiB.
    this.scratch = new Uint8Array(Math.max(need, Math.min(4096, this.scratch.length * 2)));
    this.scratchPos = 0;
    this.segmentStart = 0;
  }
}
