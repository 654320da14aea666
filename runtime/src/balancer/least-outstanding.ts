import type { Balancer, Candidate, Pick, PickContext, RandomSource } from "./types.js";

/**
 * Least outstanding calls by the power of two random choices: draw two distinct candidates
 * at random and take the one with fewer calls in flight. It is O(1) per pick, and unlike a
 * full scan for the global minimum it does not send a burst of simultaneous picks all to
 * the one idle instance (the herd effect); it still steers load firmly away from busy ones.
 */
export class LeastOutstandingBalancer implements Balancer {
  constructor(private readonly random: RandomSource = Math.random) {}

  pick(candidates: readonly Candidate[], _ctx?: PickContext): Pick | undefined {
    const n = candidates.length;
    if (n === 0) return undefined;
    if (n === 1) {
      const only = candidates[0]!;
      return only.healthy !== false ? new LeastPick(only, undefined) : undefined;
    }
    const i = Math.floor(this.random() * n);
    let j = Math.floor(this.random() * (n - 1));
    if (j >= i) j++;
    const a = candidates[i]!;
    const b = candidates[j]!;
    if (a.healthy !== false && b.healthy !== false) {
      // Ties go to `a`, itself a uniformly random draw, so ties spread evenly.
      return b.outstanding < a.outstanding ? new LeastPick(b, a) : new LeastPick(a, b);
    }
    if (a.healthy !== false) return new LeastPick(a, undefined);
    if (b.healthy !== false) return new LeastPick(b, undefined);
    return this.scan(candidates);
  }

  /** Rare path (both draws unhealthy): the least loaded usable candidate. */
  private scan(candidates: readonly Candidate[]): Pick | undefined {
    let best: Candidate | undefined;
    for (const c of candidates) {
      if (c.healthy === false) continue;
      if (best === undefined || c.outstanding < best.outstanding) best = c;
    }
    return best && new LeastPick(best, undefined);
  }

  describe(): string {
    return "least outstanding (two random choices)";
  }
}

class LeastPick implements Pick {
  private readonly mine: number;
  private readonly theirs: number;
  constructor(
    readonly candidate: Candidate,
    private readonly other: Candidate | undefined,
  ) {
    // Captured now: the router bumps `outstanding` right after the pick.
    this.mine = candidate.outstanding;
    this.theirs = other?.outstanding ?? -1;
  }
  get reason(): string {
    if (!this.other) return `least outstanding (${this.mine} in flight, only usable choice)`;
    return `least outstanding: ${this.mine} in flight vs ${this.theirs} on ${this.other.id}`;
  }
}
