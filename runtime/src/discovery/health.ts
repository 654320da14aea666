// grpc.health.v1.Health for a router: a routed service is SERVING while at least one
// healthy instance is registered for it, NOT_SERVING otherwise; the router itself ("")
// is SERVING while it accepts calls. Health checkers (Kubernetes probes, load balancers,
// grpc-health-probe) see the router the way a client would.
import type * as grpc from "@grpc/grpc-js";
import { HealthImplementation, type ServingStatus } from "grpc-health-check";

export class RouterHealth {
  readonly #impl: HealthImplementation;
  readonly #status = new Map<string, ServingStatus>();

  constructor(services: Iterable<string>) {
    this.#impl = new HealthImplementation({ "": "SERVING" });
    for (const s of services) this.set(s, false);
  }

  addTo(server: Pick<grpc.Server, "addService">): void {
    // grpc-health-check types a structural server; grpc-js's Server satisfies it.
    this.#impl.addToServer(server as unknown as Parameters<HealthImplementation["addToServer"]>[0]);
  }

  /** Records whether `service` has a healthy instance; watchers hear only of changes. */
  set(service: string, serving: boolean): void {
    const status: ServingStatus = serving ? "SERVING" : "NOT_SERVING";
    if (this.#status.get(service) === status) return;
    this.#status.set(service, status);
    this.#impl.setStatus(service, status);
  }

  /** The router is shutting down: every service and the router itself stop serving. */
  shutdown(): void {
    this.#impl.setStatus("", "NOT_SERVING");
    for (const s of this.#status.keys()) this.set(s, false);
  }
}
