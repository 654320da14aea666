import type { Balancer, Candidate, CustomPickFunction, Pick, PickContext } from "./types.js";
import { FixedPick } from "./util.js";

/** A plain function as a strategy. What it returns is checked: a candidate that was not
 *  offered, or one marked unhealthy, is a bug in the function and fails loudly. */
export class CustomBalancer implements Balancer {
  private readonly reason: string;

  constructor(
    private readonly fn: CustomPickFunction,
    private readonly name = fn.name || "anonymous",
  ) {
    this.reason = `custom strategy '${this.name}'`;
  }

  pick(candidates: readonly Candidate[], ctx: PickContext): Pick | undefined {
    const out = this.fn(candidates, ctx);
    if (out === undefined) return undefined;
    const pick: Pick = "candidate" in out ? out : new FixedPick(out, this.reason);
    if (!candidates.includes(pick.candidate)) {
      throw new Error(`custom balancer '${this.name}' returned instance '${pick.candidate.id}', which was not among the candidates`);
    }
    if (pick.candidate.healthy === false) {
      throw new Error(`custom balancer '${this.name}' returned unhealthy instance '${pick.candidate.id}'`);
    }
    return pick;
  }

  describe(): string {
    return this.reason;
  }
}
