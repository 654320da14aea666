// How many instances each service has registered with the local router, for the code lenses.
// The router serves grpcrouter.v1.Admin on its own port; we ask GetSnapshot over plain
// HTTP/2 (node:http2) and read only the two fields we need, so the extension bundles no gRPC
// library. Field numbers are those of proto/grpcrouter/v1/admin.proto.
import http2 from "node:http2";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";

const GET_SNAPSHOT = "/grpcrouter.v1.Admin/GetSnapshot";
const SNAPSHOT_SERVICES = 2; // repeated ServiceInfo
const SNAPSHOT_INSTANCES = 3; // repeated Instance
const SERVICE_INFO_NAME = 1;
const INSTANCE_SERVICE = 2;

/** Service (fully-qualified) → registered instances; every routed service appears, with 0 too. */
export type InstanceCounts = Record<string, number>;

/** Asks the router at `address` ("127.0.0.1:port") for its snapshot. Rejects on any failure. */
export async function fetchInstanceCounts(address: string, timeoutMs = 5000): Promise<InstanceCounts> {
  const body = await unaryCall(address, GET_SNAPSHOT, new Uint8Array(0), timeoutMs);
  return countInstances(body);
}

/** Reads Snapshot.services[].name and Snapshot.instances[].service from the encoded message. */
export function countInstances(snapshot: Uint8Array): InstanceCounts {
  const counts: InstanceCounts = {};
  const r = new BinaryReader(snapshot);
  while (r.pos < r.len) {
    const [field, wire] = r.tag();
    if ((field === SNAPSHOT_SERVICES || field === SNAPSHOT_INSTANCES) && wire === WireType.LengthDelimited) {
      const name = stringField(r.bytes(), field === SNAPSHOT_SERVICES ? SERVICE_INFO_NAME : INSTANCE_SERVICE);
      if (name) counts[name] = (counts[name] ?? 0) + (field === SNAPSHOT_INSTANCES ? 1 : 0);
    } else {
      r.skip(wire);
    }
  }
  return counts;
}

function stringField(message: Uint8Array, number: number): string | undefined {
  const r = new BinaryReader(message);
  let found: string | undefined;
  while (r.pos < r.len) {
    const [field, wire] = r.tag();
    if (field === number && wire === WireType.LengthDelimited) found = r.string();
    else r.skip(wire);
  }
  return found;
}

/** One gRPC unary call with an already encoded request; resolves with the encoded response. */
function unaryCall(address: string, path: string, request: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://${address}`);
    const fail = (e: Error) => {
      session.destroy();
      reject(e);
    };
    const timer = setTimeout(() => fail(new Error(`${path}: no answer from ${address} within ${timeoutMs} ms`)), timeoutMs);
    session.once("error", fail);
    const stream = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
    });
    const chunks: Buffer[] = [];
    let status: string | undefined;
    let message = "";
    stream.on("response", (headers) => {
      // A trailers-only response carries the status in the headers.
      if (headers["grpc-status"] !== undefined) status = String(headers["grpc-status"]);
    });
    stream.on("trailers", (trailers) => {
      status = String(trailers["grpc-status"] ?? status);
      message = decodeURIComponent(String(trailers["grpc-message"] ?? ""));
    });
    stream.on("data", (b: Buffer) => chunks.push(b));
    stream.once("error", fail);
    stream.once("end", () => {
      clearTimeout(timer);
      session.close();
      if (status !== "0") return reject(new Error(`${path}: grpc-status ${status ?? "missing"}${message ? ` (${message})` : ""}`));
      const all = Buffer.concat(chunks);
      // One length-prefixed message: compressed flag (0), 4-byte big-endian length, bytes.
      if (all.length < 5 || all[0] !== 0) return reject(new Error(`${path}: unexpected response framing`));
      const len = all.readUInt32BE(1);
      resolve(new Uint8Array(all.subarray(5, 5 + len)));
    });
    const frame = Buffer.alloc(5 + request.length);
    frame.writeUInt32BE(request.length, 1);
    frame.set(request, 5);
    stream.end(frame);
  });
}

/** Polls a running router's counts and reports them when they change. */
export class InstancePoller {
  private timer: NodeJS.Timeout | undefined;
  private last = "";

  constructor(
    private readonly onCounts: (counts: InstanceCounts | undefined) => void,
    private readonly intervalMs = 2000,
  ) {}

  start(address: string): void {
    this.stop();
    const tick = async () => {
      let counts: InstanceCounts | undefined;
      try {
        counts = await fetchInstanceCounts(address);
      } catch {
        counts = undefined; // a router without the Admin service, or busy: counts unknown
      }
      if (!this.timer) return;
      const key = JSON.stringify(counts ?? null);
      if (key !== this.last) {
        this.last = key;
        this.onCounts(counts);
      }
      this.timer = setTimeout(() => void tick(), this.intervalMs);
    };
    this.timer = setTimeout(() => void tick(), 0);
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.last = "";
  }
}
