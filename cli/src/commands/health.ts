// `grpcrouter health`: asks a router's grpc.health.v1.Health whether it (or one service) is
// SERVING, and says so in its exit code. It is the container image's HEALTHCHECK (the image
// has no grpc-health-probe), and works against any gRPC server that serves grpc.health.v1.
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { healthServiceDefinition, loadChannelCredentials, type ChannelTlsFiles } from "@grpcrouter/runtime";
import { UsageError, type Command } from "../command.js";

/** grpc.health.v1.HealthCheckResponse.ServingStatus, by number. */
const STATUS_NAMES = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"];

const HealthClient = grpc.makeGenericClientConstructor(healthServiceDefinition, "grpc.health.v1.Health");

/** HealthCheckRequest { string service = 1; } on the wire (the runtime's codec wants a protobuf-es message). */
export function encodeHealthRequest(service: string): Buffer {
  const bytes = Buffer.from(service, "utf8");
  const len: number[] = [];
  for (let n = bytes.length; ; n >>>= 7) {
    if (n < 0x80) {
      len.push(n);
      break;
    }
    len.push((n & 0x7f) | 0x80);
  }
  return service === "" ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a, ...len]), bytes]);
}

export interface HealthAnswer {
  /** SERVING, NOT_SERVING, … or the gRPC error when the check itself failed. */
  status: string;
  serving: boolean;
}

/** One Health/Check call to `address` for `service` ("" is the server itself). */
export function checkHealth(address: string, service: string, credentials: grpc.ChannelCredentials, timeoutMs: number): Promise<HealthAnswer> {
  const client = new HealthClient(address, credentials);
  return new Promise<HealthAnswer>((resolve) => {
    client.makeUnaryRequest(
      healthServiceDefinition.Check!.path,
      (b: Buffer) => b,
      healthServiceDefinition.Check!.responseDeserialize,
      encodeHealthRequest(service),
      new grpc.Metadata(),
      { deadline: Date.now() + timeoutMs },
      (err: grpc.ServiceError | null, res?: { status: number }) => {
        if (err) resolve({ status: `${grpc.status[err.code] ?? err.code}: ${err.details}`, serving: false });
        else resolve({ status: STATUS_NAMES[res?.status ?? 0] ?? String(res?.status), serving: res?.status === 1 });
      },
    );
  }).finally(() => client.close());
}

export const healthCommand: Command = {
  name: "health",
  summary: "exit 0 when a router (or one of its services) answers grpc.health.v1 SERVING",
  usage: "grpcrouter health [--address HOST:PORT] [--service NAME] [--timeout S] [--tls] [--ca FILE] [--cert FILE --key FILE]",
  details: [
    "  --address HOST:PORT  the router to ask (default: 127.0.0.1:9090)",
    "  --service NAME       a routed service, e.g. demo.v1.Echo: SERVING while it has a healthy",
    "                       instance (default: the router itself, SERVING while it accepts calls)",
    "  --timeout S          give up after S seconds (default: 5)",
    "  --tls                dial with TLS (system CAs unless --ca)",
    "  --ca FILE            trust this CA for the router's certificate (implies --tls)",
    "  --cert FILE          a client certificate, for a router that requires one; needs",
    "  --key FILE           its private key (both imply --tls)",
    "",
    "Prints the status; exit 0 when SERVING, 1 otherwise (not serving, unknown, unreachable).",
  ],
  options: {
    address: { type: "string" },
    service: { type: "string" },
    timeout: { type: "string" },
    tls: { type: "boolean" },
    ca: { type: "string" },
    cert: { type: "string" },
    key: { type: "string" },
  },
  async run(values, _positionals, io) {
    const address = typeof values.address === "string" && values.address ? values.address : "127.0.0.1:9090";
    if (!/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/.test(address)) throw new UsageError(`--address ${address}: expected HOST:PORT`);
    const service = typeof values.service === "string" ? values.service : "";
    const timeout = values.timeout === undefined ? 5 : Number(values.timeout);
    if (!Number.isFinite(timeout) || timeout <= 0) throw new UsageError(`--timeout ${String(values.timeout)}: not a positive number of seconds`);
    const file = (name: "ca" | "cert" | "key") => (typeof values[name] === "string" ? path.resolve(io.cwd, values[name] as string) : undefined);
    const files: ChannelTlsFiles = {};
    const [ca, cert, key] = [file("ca"), file("cert"), file("key")];
    if ((cert === undefined) !== (key === undefined)) throw new UsageError(cert ? "--cert needs --key" : "--key needs --cert");
    if (ca) files.ca = ca;
    if (cert && key) Object.assign(files, { cert, key });
    const tls = values.tls === true || ca !== undefined || cert !== undefined;
    const credentials = tls ? loadChannelCredentials(files, { ca: "--ca", cert: "--cert", key: "--key" }) : grpc.credentials.createInsecure();
    const answer = await checkHealth(address, service, credentials, timeout * 1000);
    const what = service ? `${service} at ${address}` : address;
    (answer.serving ? io.stdout : io.stderr).write(`grpcrouter: ${what}: ${answer.status}\n`);
    return answer.serving ? 0 : 1;
  },
};
