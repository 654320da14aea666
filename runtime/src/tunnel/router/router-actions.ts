// An operator's actions on one routed service (Admin Act, see admin/actions.ts): drain,
// eject and restore an instance, change its weight, pause and resume the service. They act
// through the pool's own levers, so the balancer honours them on the next pick: a drained or
// ejected instance is no candidate (its queued calls move on, calls in flight finish), a
// weight is read on every pick, and a paused service refuses calls before any instance.
import { ActionKind, type ActionRequest } from "../../gen/grpcrouter/v1/admin_pb.js";
import { ActionError, type ActionTarget } from "../../admin/actions.js";
import type { AuditSink } from "../../log/audit.js";
import type { ServerCall } from "../http2/server-call.js";
import type { RouterContext } from "./router-context.js";
import type { RouterInstance, ServiceRoute } from "./router-registry.js";

export function serviceActionTarget(
  route: ServiceRoute,
  ctx: RouterContext,
  audit: AuditSink | undefined,
  /** Runs a call as the router's method handler would (replay). */
  dispatch: (call: ServerCall, request: Buffer | undefined) => boolean,
): ActionTarget {
  const service = route.serviceName;
  const instanceOf = (id: string): RouterInstance => {
    const inst = route.instances.get(id);
    if (inst) return inst;
    const known = [...route.instances.keys()];
    throw new ActionError(
      "NOT_FOUND",
      `instance_id: ${service} has no instance ${JSON.stringify(id)}${known.length ? ` (it has ${known.map((k) => JSON.stringify(k)).join(", ")})` : " registered"}`,
    );
  };
  const apply = (r: ActionRequest): string => {
    const why = r.note ? ` (${r.note})` : "";
    if (r.kind === ActionKind.PAUSE) {
      if (route.paused !== undefined) return `${service} was already paused`;
      route.paused = `${service} is paused by an operator${why}; calls are refused until it is resumed`;
      return `paused ${service}: new calls are refused UNAVAILABLE, calls in flight finish`;
    }
    if (r.kind === ActionKind.RESUME) {
      if (route.paused === undefined) return `${service} was not paused`;
      route.paused = undefined;
      return `resumed ${service}: calls are routed again`;
    }
    const inst = instanceOf(r.instanceId);
    const name = `instance ${JSON.stringify(inst.id)} of ${service}`;
    switch (r.kind) {
      case ActionKind.DRAIN:
        inst.pooled.setOperatorDrain(true);
        return `drained ${name}: no new calls, ${inst.outstanding} in flight finish`;
      case ActionKind.UNDRAIN:
        inst.pooled.setOperatorDrain(false);
        return `undrained ${name}: it takes calls again${inst.pooled.ok ? "" : ` once ${inst.pooled.health.reason}`}`;
      case ActionKind.EJECT:
        inst.pooled.setOperatorEject(true);
        return `ejected ${name} until restored`;
      case ActionKind.RESTORE:
        inst.pooled.setOperatorEject(false);
        return `restored ${name}${inst.pooled.ok ? "" : `; still out: ${inst.pooled.health.reason}`}`;
      case ActionKind.SET_WEIGHT: {
        const before = inst.weight;
        inst.operatorWeight = r.weight;
        inst.weight = r.weight;
        inst.pooled.setWeight(r.weight);
        return `weight of ${name}: ${before} → ${r.weight}`;
      }
      default:
        throw new ActionError("INVALID_ARGUMENT", `kind: ${r.kind} is not an action on an instance`);
    }
  };
  return {
    service,
    audit,
    get paused() {
      return route.paused !== undefined;
    },
    apply(r) {
      const summary = apply(r);
      ctx.log(`operator: ${summary}`);
      const inst = route.instances.get(r.instanceId);
      if (inst) route.publishInstance(inst, "instanceChanged");
      return summary;
    },
    dispatch,
  };
}
