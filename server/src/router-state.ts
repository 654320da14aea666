// What the server knows of a local router: whether one runs and how many instances each
// service has registered. The server cannot see the router; the extension (which starts it
// and reads its admin stream) feeds this through the `grpcrouter/routerState` notification.
import type { RouterStateParams } from "./protocol.js";

export interface InstanceCounts {
  routerRunning(): boolean;
  /** Registered instances of a service (fully-qualified name), when known. */
  instances(service: string): number | undefined;
}

export class RouterState implements InstanceCounts {
  private state: RouterStateParams = { running: false };

  update(params: RouterStateParams): void {
    this.state = { ...params };
  }

  routerRunning(): boolean {
    return this.state.running;
  }

  instances(service: string): number | undefined {
    if (!this.state.running || !this.state.instances) return undefined;
    return this.state.instances[service] ?? 0;
  }
}
