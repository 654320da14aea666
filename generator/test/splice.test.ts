// The property the router relies on: a frame protobuf-es encodes from typed messages is
// byte-identical to one built by splicing the request's own bytes behind a tag and a
// length, and a response payload can be sliced back out of a typed frame unchanged.
import assert from "node:assert/strict";
import { test } from "node:test";
import { create, toBinary, fromBinary, type DescMessage, type FileRegistry } from "@bufbuild/protobuf";
import { buildRouterProtos } from "../src/index.js";
import { registryFromProtos } from "../src/generate.js";
import { generateFixture, tempDir } from "./support/fixtures.js";

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

/** call = 1 (varint) followed by the method's field (length-delimited) holding `payload`. */
function spliceFrame(call: number, fieldNumber: number, payload: Uint8Array): Uint8Array {
  return Uint8Array.from([0x08, ...varint(call), ...varint((fieldNumber << 3) | 2), ...varint(payload.length), ...payload]);
}

/** The payload bytes of the first length-delimited field numbered `fieldNumber`. */
function slicePayload(frame: Uint8Array, fieldNumber: number): Uint8Array {
  let pos = 0;
  const read = () => {
    let v = 0;
    for (let shift = 0; ; shift += 7) {
      const b = frame[pos++]!;
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
    }
  };
  while (pos < frame.length) {
    const tag = read();
    const wire = tag & 7;
    if (wire === 0) read();
    else if (wire === 2) {
      const len = read();
      if (tag >>> 3 === fieldNumber) return frame.subarray(pos, pos + len);
      pos += len;
    } else throw new Error(`unexpected wire type ${wire}`);
  }
  throw new Error(`field ${fieldNumber} not found`);
}

async function registryWithRouterProtos(
  root: string,
): Promise<{ registry: FileRegistry; fields: Map<string, Map<string, { number: number; field: string }>> }> {
  const out = tempDir();
  try {
    const r = await generateFixture(root, out.dir);
    const compiled = r.compiled;
    const router = buildRouterProtos({ registry: compiled.registry!, files: compiled.files });
    const registry = registryFromProtos([...compiled.fileDescriptorSet!.file, ...router.protos.map((p) => p.descriptor)]);
    const fields = new Map<string, Map<string, { number: number; field: string }>>();
    for (const s of router.plan.services.values()) {
      fields.set(s.service, new Map(s.methods.map((m) => [m.name, { number: m.fieldNumber, field: m.fieldName }])));
    }
    return { registry, fields };
  } finally {
    out.remove();
  }
}

function message(registry: FileRegistry, name: string): DescMessage {
  const m = registry.getMessage(name);
  assert.ok(m, `${name} is in the registry`);
  return m;
}

test("splicing a request's bytes gives the frame protobuf-es encodes (small and large payloads, one- and two-byte tags)", async () => {
  const { registry, fields } = await registryWithRouterProtos("many/proto");
  const frameSchema = message(registry, "bulk.v1.BulkRouterFrame");
  const reqSchema = message(registry, "bulk.v1.Req");
  for (const [method, id, call] of [
    ["Method001", "a", 1],
    ["Method100", "x".repeat(300), 300000],
  ] as const) {
    const { number, field } = fields.get("bulk.v1.Bulk")!.get(method)!;
    const req = create(reqSchema, { id });
    const typed = toBinary(frameSchema, create(frameSchema, { call: BigInt(call), frame: { case: camel(field), value: req } } as never));
    const spliced = spliceFrame(call, number, toBinary(reqSchema, req));
    assert.deepEqual(spliced, typed, `${method} (field ${number}, ${id.length}-char id)`);
  }
});

test("a response payload sliced out of a typed instance frame decodes to the handler's message; envelopes are concatenated frames", async () => {
  const { registry, fields } = await registryWithRouterProtos("naming/proto");
  const frameSchema = message(registry, "acme.shop.v1.ShopInstanceFrame2");
  const envelopeSchema = message(registry, "acme.shop.v1.ShopInstanceMessage2");
  const itemSchema = message(registry, "acme.shop.v1.Item");
  const { number, field } = fields.get("acme.shop.v1.Shop")!.get("class")!;
  const item = create(itemSchema, { id: "item-7" });
  const frame = create(frameSchema, { call: 9n, frame: { case: camel(field), value: item } } as never);
  const bytes = toBinary(frameSchema, frame);
  const payload = slicePayload(bytes, number);
  assert.deepEqual(payload, toBinary(itemSchema, item));
  assert.equal((fromBinary(itemSchema, payload) as unknown as { id: string }).id, "item-7");

  const second = toBinary(frameSchema, create(frameSchema, { call: 10n } as never));
  const envelope = toBinary(envelopeSchema, create(envelopeSchema, { frames: [frame, create(frameSchema, { call: 10n } as never)] } as never));
  const concatenated = Uint8Array.from([0x0a, ...varint(bytes.length), ...bytes, 0x0a, ...varint(second.length), ...second]);
  assert.deepEqual(envelope, concatenated);
});

function camel(snake: string): string {
  return snake.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}
