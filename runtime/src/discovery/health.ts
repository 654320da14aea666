// grpc.health.v1.Health for a router: a routed service is SERVING while at least one
// healthy instance is registered for it, NOT_SERVING otherwise; the router itself ("")
// is SERVING while it accepts calls. Health checkers (Kubernetes probes, load balancers,
// grpc-health-probe) see the router the way a client would.
//
// Served with protobuf-es messages from ./gen rather than grpc-health-check: that package
// loads its .proto from disk relative to its own folder when imported, which breaks inside
// the single-file bundles the CLI and the VS Code extension ship.
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import {
  HealthCheckRequestSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
  HealthCheckResponseSchema,
  HealthListRequestSchema,
  HealthListResponseSchema,
  type HealthCheckRequest,
  type HealthCheckResponse,
} from "./gen/grpc/health/v1/health_pb.js";

function codec<D extends DescMessage>(schema: D) {
  return {
    serialize: (msg: MessageShape<D>) => Buffer.from(toBinary(schema, msg)),
    deserialize: (bytes: Buffer) => fromBinary(schema, bytes),
  };
}
const req = codec(HealthCheckRequestSchema);
const res = codec(HealthCheckResponseSchema);
const listReq = codec(HealthListRequestSchema);
const listRes = codec(HealthListResponseSchema);

const PREFIX = "/grpc.health.v1.Health/";

/** grpc-js definition of grpc.health.v1.Health. */
export const healthServiceDefinition: grpc.ServiceDefinition = {
  Check: {
    path: `${PREFIX}Check`,
    requestStream: false,
    responseStream: false,
    requestSerialize: req.serialize,
    requestDeserialize: req.deserialize,
    responseSerialize: res.serialize,
    responseDeserialize: res.deserialize,
  },
  List: {
    path: `${PREFIX}List`,
    requestStream: false,
    responseStream: false,
    requestSerialize: listReq.serialize,
    requestDeserialize: listReq.deserialize,
    responseSerialize: listRes.serialize,
    responseDeserialize: listRes.deserialize,
  },
  Watch: {
    path: `${PREFIX}Watch`,
    requestStream: false,
    responseStream: true,
    requestSerialize: req.serialize,
    requestDeserialize: req.deserialize,
    responseSerialize: res.serialize,
    responseDeserialize: res.deserialize,
  },
};

const response = (status: ServingStatus): HealthCheckResponse => create(HealthCheckResponseSchema, { status });

export class RouterHealth {
  readonly #status = new Map<string, ServingStatus>([["", ServingStatus.SERVING]]);
  readonly #watchers = new Map<string, Set<grpc.ServerWritableStream<HealthCheckRequest, HealthCheckResponse>>>();

  constructor(services: Iterable<string>) {
    for (const s of services) this.set(s, false);
  }

  addTo(server: Pick<grpc.Server, "addService">): void {
    server.addService(healthServiceDefinition, {
      Check: (call: grpc.ServerUnaryCall<HealthCheckRequest, HealthCheckResponse>, callback: grpc.sendUnaryData<HealthCheckResponse>) => {
        const status = this.#status.get(call.request.service);
        if (status === undefined) callback({ code: grpc.status.NOT_FOUND, details: `unknown service ${call.request.service}` });
        else callback(null, response(status));
      },
      List: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        callback(null, create(HealthListResponseSchema, { statuses: Object.fromEntries([...this.#status].map(([s, st]) => [s, response(st)])) }));
      },
      Watch: (call: grpc.ServerWritableStream<HealthCheckRequest, HealthCheckResponse>) => {
        const service = call.request.service;
        let set = this.#watchers.get(service);
        if (!set) this.#watchers.set(service, (set = new Set()));
        set.add(call);
        const stop = () => {
          set.delete(call);
          if (set.size === 0 && this.#watchers.get(service) === set) this.#watchers.delete(service);
        };
        call.on("cancelled", stop);
        call.on("close", stop);
        call.on("error", stop);
        call.write(response(this.#status.get(service) ?? ServingStatus.SERVICE_UNKNOWN));
      },
    });
  }

  /** Whether `service` is known (was given to the constructor or set since). */
  has(service: string): boolean {
    return this.#status.has(service);
  }

  /** Records whether `service` has a healthy instance; watchers hear only of changes. */
  set(service: string, serving: boolean): void {
    this.#put(service, serving ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);
  }

  /** Forgets a service the router no longer routes (after a reload); watchers see SERVICE_UNKNOWN. */
  remove(service: string): void {
    if (service === "" || !this.#status.delete(service)) return;
    this.#notify(service, ServingStatus.SERVICE_UNKNOWN);
  }

  /** The router is shutting down: every service and the router itself stop serving. */
  shutdown(): void {
    for (const s of [...this.#status.keys()]) this.#put(s, ServingStatus.NOT_SERVING);
  }

  #put(service: string, status: ServingStatus): void {
    if (this.#status.get(service) === status) return;
    this.#status.set(service, status);
    this.#notify(service, status);
  }

  #notify(service: string, status: ServingStatus): void {
    // A watcher that does not read fills its own HTTP/2 window; a health status is tiny and
    // changes rarely, so writing regardless is bounded in practice.
    for (const call of this.#watchers.get(service) ?? []) call.write(response(status));
  }
}
