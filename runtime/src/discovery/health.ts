// grpc.health.v1.Health for a router: a routed service is SERVING while at least one
// healthy instance is registered for it, NOT_SERVING otherwise; the router itself ("")
// is SERVING while it accepts calls. Health checkers (Kubernetes probes, load balancers,
// grpc-health-probe) see the router the way a client would.
//
// Served with protobuf-es messages from ./gen rather than grpc-health-check: that package
// loads its .proto from disk relative to its own folder when imported, which breaks inside
// the single-file bundles the CLI and the VS Code extension ship.
import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import {
  Health,
  HealthCheckRequestSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
  HealthCheckResponseSchema,
  HealthListRequestSchema,
  HealthListResponseSchema,
  type HealthCheckRequest,
  type HealthCheckResponse,
} from "./gen/grpc/health/v1/health_pb.js";
import { grpcServiceDefinition } from "../grpc-definition.js";
import { GrpcServer } from "../tunnel/http2/server.js";
import { StatusError, serveServerStream, serveUnary } from "../tunnel/http2/typed.js";

const PREFIX = "/grpc.health.v1.Health/";

/** grpc-js definition of grpc.health.v1.Health. */
export const healthServiceDefinition: grpc.ServiceDefinition = grpcServiceDefinition(Health);

const response = (status: ServingStatus): HealthCheckResponse => create(HealthCheckResponseSchema, { status });

export class RouterHealth {
  readonly #status = new Map<string, ServingStatus>([["", ServingStatus.SERVING]]);
  /** Per service, the Watch calls: each takes a status to write. */
  readonly #watchers = new Map<string, Set<(status: HealthCheckResponse) => void>>();

  constructor(services: Iterable<string>) {
    for (const s of services) this.set(s, false);
  }

  /** Serves grpc.health.v1.Health on a GrpcServer (the router's) or a grpc-js server. */
  addTo(server: GrpcServer | Pick<grpc.Server, "addService">): void {
    if (server instanceof GrpcServer) {
      serveUnary(server, `${PREFIX}Check`, HealthCheckRequestSchema, HealthCheckResponseSchema, (req) => this.#check(req.service));
      serveUnary(server, `${PREFIX}List`, HealthListRequestSchema, HealthListResponseSchema, () => this.#list());
      serveServerStream(server, `${PREFIX}Watch`, HealthCheckRequestSchema, HealthCheckResponseSchema, (req, sink) => {
        this.#watch(req.service, (r) => sink.write(r), sink.signal);
      });
      return;
    }
    server.addService(healthServiceDefinition, {
      Check: (call: grpc.ServerUnaryCall<HealthCheckRequest, HealthCheckResponse>, callback: grpc.sendUnaryData<HealthCheckResponse>) => {
        try {
          callback(null, this.#check(call.request.service));
        } catch (e) {
          callback({ code: (e as StatusError).code, details: (e as Error).message });
        }
      },
      List: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => callback(null, this.#list()),
      Watch: (call: grpc.ServerWritableStream<HealthCheckRequest, HealthCheckResponse>) => {
        const abort = new AbortController();
        const stop = () => abort.abort();
        call.on("cancelled", stop);
        call.on("close", stop);
        call.on("error", stop);
        this.#watch(call.request.service, (r) => call.write(r), abort.signal);
      },
    });
  }

  #check(service: string): HealthCheckResponse {
    const status = this.#status.get(service);
    if (status === undefined) throw new StatusError(grpc.status.NOT_FOUND, `unknown service ${service}`);
    return response(status);
  }

  #list() {
    return create(HealthListResponseSchema, { statuses: Object.fromEntries([...this.#status].map(([s, st]) => [s, response(st)])) });
  }

  /** Writes the status of `service` now and on every change until `signal` aborts. */
  #watch(service: string, write: (r: HealthCheckResponse) => void, signal: AbortSignal): void {
    if (signal.aborted) return;
    let set = this.#watchers.get(service);
    if (!set) this.#watchers.set(service, (set = new Set()));
    set.add(write);
    signal.addEventListener("abort", () => {
      set.delete(write);
      if (set.size === 0 && this.#watchers.get(service) === set) this.#watchers.delete(service);
    });
    write(response(this.#status.get(service) ?? ServingStatus.SERVICE_UNKNOWN));
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
    for (const write of this.#watchers.get(service) ?? []) write(response(status));
  }
}
