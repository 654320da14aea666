import type { Balancer, Candidate, Pick, PickContext } from "./types.js";
import { FixedPick } from "./util.js";

/** Plain round robin: each usable candidate in turn, ignoring weights. */
export class RoundRobinBalancer implements Balancer {
  private next = 0;

  pick(candidates: readonly Candidate[], _ctx?: PickContext): Pick | undefined {
    const n = candidates.length;
    for (let tries = 0; tries < n; tries++) {
      // The counter only ever grows by one per visit; modulo keeps it valid when n shrinks.
      const i = this.next++ % n;
      if (this.next >= 0x3fffffff) this.next = 0;
      const c = candidates[i]!;
      if (c.healthy !== false) return new FixedPick(c, "round robin");
    }
    return undefined;
  }

  describe(): string {
    return "round robin";
  }
}
