// The sidecar's view of its target: which of the module's services the target implements
// (from its server reflection, when it serves it), and whether it is up. Kept apart from
// the forwarding path (passthroughHandler): its own channel, its own calls. A sidecar must
// not tell the router its instance is SERVING while the target is down, nor register
// services the target does not implement (every call to them would fail UNIMPLEMENTED).
import * as grpc from "@grpc/grpc-js";
import { createReflectionClient, healthServiceDefinition } from "@grpcrouter/runtime";
import { encodeHealthRequest } from "./health.js";

const CHECK_TIMEOUT_MS = 3000;
const HEALTH_CHECK = healthServiceDefinition.Check!;

/**
 * The services the target lists through server reflection, or undefined when it does not
 * serve reflection (or cannot be asked now): then the sidecar cannot tell and registers all.
 */
export async function targetServices(target: string, credentials: grpc.ChannelCredentials): Promise<string[] | undefined> {
  const client = createReflectionClient(target, { credentials });
  try {
    return await Promise.race([client.listServices(), new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), CHECK_TIMEOUT_MS).unref())]);
  } catch {
    return undefined;
  } finally {
    client.close();
  }
}

/** What one check found: per service, serving or not, and how it was decided. */
export interface TargetState {
  serving: Map<string, boolean>;
  /** "health" (grpc.health.v1) or "connection" (the target does not serve health: a connection probe). */
  by: "health" | "connection";
}

/** Checks the target's health now: grpc.health.v1 Check per service when served, else a connection probe. */
export class TargetHealth {
  private readonly client: grpc.Client;

  constructor(
    target: string,
    credentials: grpc.ChannelCredentials,
    private readonly services: readonly string[],
  ) {
    this.client = new grpc.Client(target, credentials);
  }

  async check(): Promise<TargetState> {
    const serving = new Map<string, boolean>();
    let overall: number | undefined;
    for (const service of this.services) {
      const r = await this.healthCheck(service);
      if (r.code === grpc.status.UNIMPLEMENTED) return { serving: await this.probeAll(), by: "connection" };
      // Unreachable: nothing of it is serving, whatever it would say.
      if (r.code === grpc.status.UNAVAILABLE || r.code === grpc.status.DEADLINE_EXCEEDED)
        return { serving: new Map(this.services.map((x) => [x, false])), by: "connection" };
      if (r.code === grpc.status.NOT_FOUND) {
        // The target does not report this service by name: its overall status stands for it.
        overall ??= (await this.healthCheck("")).status;
        serving.set(service, overall === 1);
      } else serving.set(service, r.code === grpc.status.OK && r.status === 1);
    }
    return { serving, by: "health" };
  }

  close(): void {
    this.client.close();
  }

  private healthCheck(service: string): Promise<{ code: grpc.status; status?: number }> {
    return new Promise((resolve) => {
      this.client.makeUnaryRequest(
        HEALTH_CHECK.path,
        encodeHealthRequest,
        HEALTH_CHECK.responseDeserialize as (b: Buffer) => { status: number },
        service,
        new grpc.Metadata(),
        { deadline: Date.now() + CHECK_TIMEOUT_MS },
        (err, res) => resolve(err ? { code: err.code } : { code: grpc.status.OK, status: res!.status }),
      );
    });
  }

  /** The target is up when a connection to it is ready. */
  private async probeAll(): Promise<Map<string, boolean>> {
    const up = await new Promise<boolean>((resolve) => this.client.waitForReady(Date.now() + CHECK_TIMEOUT_MS, (err) => resolve(!err)));
    return new Map(this.services.map((s) => [s, up]));
  }
}

/**
 * Checks the target every `intervalMs` and calls `onChange(service, serving, by)` when a
 * service's state changes (and once for each at the first check). Returns a stop function.
 */
export function watchTargetHealth(
  health: TargetHealth,
  intervalMs: number,
  onChange: (service: string, serving: boolean, by: TargetState["by"]) => void,
): () => void {
  const last = new Map<string, boolean>();
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const tick = async () => {
    const state = await health.check();
    if (stopped) return;
    for (const [service, serving] of state.serving) {
      if (last.get(service) !== serving) onChange(service, serving, state.by);
      last.set(service, serving);
    }
    timer = setTimeout(() => void tick(), intervalMs);
    timer.unref();
  };
  void tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
