import type { Balancer, Candidate, Pick, PickContext } from "./types.js";
import { MembershipTracker, weightOf } from "./util.js";

/**
 * Smooth weighted round robin (the scheme nginx uses): every pick adds each candidate's
 * weight to its running score, takes the highest score and subtracts the total from it.
 * Over any window of Σweights picks each candidate is chosen exactly weight times, and the
 * picks are interleaved (5,1,1 gives a a b a c a a, not a a a a a b c). Weights are read
 * on every pick, so a weight changed at runtime takes effect at once.
 */
export class WeightedRoundRobinBalancer implements Balancer {
  private readonly membership = new MembershipTracker();
  private scores = new Float64Array(0);

  pick(candidates: readonly Candidate[], _ctx?: PickContext): Pick | undefined {
    if (this.membership.changed(candidates)) this.rebuild(candidates);
    const scores = this.scores;
    let total = 0;
    let best = -1;
    for (let i = 0; i < candidates.length; i++) {
      const c = candidates[i]!;
      if (c.healthy === false) continue;
      const w = weightOf(c);
      scores[i]! += w;
      total += w;
      if (best < 0 || scores[i]! > scores[best]!) best = i;
    }
    if (best < 0) return undefined;
    scores[best]! -= total;
    return new WrrPick(candidates[best]!, total);
  }

  private ids: string[] = [];

  /** Keeps the running scores of instances that stay, so a join does not reset the cycle. */
  private rebuild(candidates: readonly Candidate[]): void {
    const old = new Map<string, number>();
    for (let i = 0; i < this.ids.length; i++) old.set(this.ids[i]!, this.scores[i]!);
    const scores = new Float64Array(candidates.length);
    for (let i = 0; i < candidates.length; i++) scores[i] = old.get(candidates[i]!.id) ?? 0;
    this.scores = scores;
    this.ids = candidates.map((c) => c.id);
  }

  describe(): string {
    return "weighted round robin";
  }
}

class WrrPick implements Pick {
  constructor(
    readonly candidate: Candidate,
    private readonly total: number,
  ) {}
  get reason(): string {
    return `weighted round robin (weight ${weightOf(this.candidate)} of ${this.total})`;
  }
}
