// Changing a running service's balancer without a new pool: the pool keeps one balancer
// object for its life, and this one delegates to whichever Router.configure chose last.
// (The pool's resilience settings change in place: InstancePool.reconfigure.)
import type { Balancer, Candidate, Pick, PickContext } from "../../balancer/index.js";

/** The pool's balancer for its whole life; `current` is swapped by Router.configure. A new
 *  balancer starts without groups or rings and builds them from the candidates on its first pick. */
export class SwitchableBalancer implements Balancer {
  constructor(public current: Balancer) {}

  pick(candidates: readonly Candidate[], ctx: PickContext): Pick | undefined {
    return this.current.pick(candidates, ctx);
  }

  describe(): string {
    return this.current.describe();
  }
}
