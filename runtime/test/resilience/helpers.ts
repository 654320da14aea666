import { RoundRobinBalancer, type Balancer } from "../../src/balancer/index.js";
import {
  CallAttempt,
  CallRejectedError,
  InstancePool,
  ManualClock,
  type AttemptResult,
  type CallInit,
  type ResilienceOptions,
} from "../../src/resilience/index.js";

export function pool(resilience: ResilienceOptions = {}, balancer: Balancer = new RoundRobinBalancer()) {
  const clock = new ManualClock();
  const events: string[] = [];
  const p = new InstancePool({
    service: "demo.v1.Echo",
    balancer,
    clock,
    // No heartbeats flow in these tests unless one asks for them.
    resilience: { random: () => 0.5, heartbeatTimeoutMs: 0, ...resilience },
    onHealthChange: (s) => events.push(`${s.id} ${s.health}`),
  });
  return { pool: p, clock, events };
}

export const OK: AttemptResult = { code: 0, delivered: true };
export const UNAVAILABLE: AttemptResult = { code: 14, delivered: true };
export const UNDELIVERED: AttemptResult = { code: 14, delivered: false };

/** Runs one call to its end the way the router does: attempt, finish, retry while told to.
 *  `serve` says how an attempt on an instance ends. Returns the instances tried and the final code. */
export async function runCall(
  p: InstancePool,
  clock: ManualClock,
  serve: (instanceId: string, attempt: CallAttempt) => AttemptResult,
  init: Partial<CallInit> = {},
): Promise<{ tried: string[]; code: number; message?: string }> {
  const call = p.call({ method: "/demo.v1.Echo/Say", ...init });
  const tried: string[] = [];
  for (;;) {
    let attempt: CallAttempt;
    const pending = call.next();
    // Backoff sleeps use the manual clock: move it until the attempt is granted.
    let settled = false;
    pending.then(
      () => (settled = true),
      () => (settled = true),
    );
    await new Promise((r) => setImmediate(r));
    for (let i = 0; i < 1000 && !settled; i++) await clock.advance(1);
    try {
      attempt = await pending;
    } catch (e) {
      if (e instanceof CallRejectedError) return { tried, code: e.code, message: e.message };
      throw e;
    }
    tried.push(attempt.instance.id);
    const result = serve(attempt.instance.id, attempt);
    const d = attempt.finish(result);
    if (!d.retry) return { tried, code: result.code };
  }
}

/** Resolves to "pending" if the promise has not settled once queued callbacks have run. */
export async function state<T>(p: Promise<T>): Promise<"pending" | "fulfilled" | "rejected"> {
  let s: "pending" | "fulfilled" | "rejected" = "pending";
  p.then(
    () => (s = "fulfilled"),
    () => (s = "rejected"),
  );
  await new Promise((r) => setImmediate(r));
  return s;
}
