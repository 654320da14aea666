// What the server knows of a local router: whether one runs and how many instances each
// service has registered. The server cannot see the router; the extension (which starts it
// and reads its admin stream) feeds this through the `grpcrouter/routerState` notification.

export interface InstanceCounts {
  routerRunning(): boolean;
  /** Registered instances of a service (fully-qualified name), when known. */
  instances(service: string): number | undefined;
}

/** The `grpcrouter/routerState` notification's parameters. */
export interface RouterStateParams {
  running: boolean;
  /** e.g. "127.0.0.1:50051", when running. */
  address?: string;
  /** Service fqn → registered instances; absent when the count is not known. */
  instances?: Record<string, number>;
}

export const ROUTER_STATE_NOTIFICATION = "grpcrouter/routerState";

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
