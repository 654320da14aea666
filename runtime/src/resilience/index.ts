// Health and resilience for the router: pure (no I/O), every timer through an injectable
// Clock, so tests drive time with ManualClock.
//
// Two ways to wire it, per routed service:
//
// A. InstancePool does everything (health, ejection, limits, queues, wait-for-ready,
//    retries). The router keeps its streams and hands calls over:
//
//      const pool = new InstancePool({ service: "demo.v1.Echo", balancer, resilience,
//        onHealthChange: (s) => hub?.publish({ type: "instanceChanged", instance: { id: s.id, service, health: s.health } }) });
//      // Hello accepted (first stream of an instance id):
//      const inst = pool.get(hello.instanceId) ?? pool.add({ id, labels, weight, maxConcurrentCalls });
//      // a later Hello of the same id:  inst.setLabels(l); inst.setWeight(w); inst.setMaxConcurrentCalls(n);
//      // every frame read from any of its streams:   inst.heartbeat();
//      // HealthReport:                                inst.report(frame.status);
//      // Drain:                                       inst.drain();
//      // last stream gone:                            pool.remove(id);
//      // a client call:
//      const call = pool.call({ method, idempotent: isIdempotent(descMethod), routingKey, metadata, deadline, signal });
//      for (;;) {
//        const attempt = await call.next();        // throws CallRejectedError {code, details}
//        const result = await runOn(attempt.instance.id, attempt.pick.reason);   // the tunnel part
//        if (!attempt.finish(result).retry) return result;  // result: {code, delivered, committed}
//      }
//      // shutdown: pool.close();
//
//    The pool owns each Candidate's `outstanding` and `healthy` (= may take a call now);
//    pool.candidates is the copy-on-write array the balancer sees.
//
// B. A router with its own dispatch and queue takes the parts it lacks:
//    - HealthMonitor/InstanceHealth: `health.ok` joins the availability check; heartbeat(),
//      report(), drain(), recordResult(code) feed it; onChange says when to refresh and
//      retry waiting calls.
//    - decideRetry + RetryBudget (+ isIdempotent): after an attempt fails, whether and when
//      to dispatch it again (recordRequest() per call).
//    - resolveResilienceOptions: the defaults and validated settings.
export { systemClock, ManualClock, type Clock, type TimerHandle } from "./clock.js";
export {
  StatusCode,
  ResilienceConfigError,
  resolveResilienceOptions,
  type ResilienceOptions,
  type ResolvedOptions,
  type OutlierOptions,
  type RetryOptions,
  type RetryBudgetOptions,
} from "./options.js";
export { OutlierState, maxEjected } from "./outlier.js";
export { HealthMonitor, InstanceHealth, type HealthMonitorOptions, type HealthState } from "./health.js";
export {
  RetryBudget,
  RetryPolicy,
  CallRetries,
  decideRetry,
  isIdempotent,
  codeName,
  type AttemptResult,
  type RetryDecision,
  type RetryState,
} from "./retry.js";
export {
  InstancePool,
  PooledInstance,
  PoolCall,
  CallAttempt,
  CallRejectedError,
  type InstancePoolOptions,
  type InstanceInit,
  type InstanceStatus,
  type CallInit,
  type CancelSignal,
} from "./pool.js";
