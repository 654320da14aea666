import type { Balancer, Candidate, Pick, PickContext } from "./types.js";
import { GoldenSequence, MembershipTracker, WrappedPick, formatLabels, hashString, matchesLabels } from "./util.js";

export interface SplitRule {
  /** The instances this share goes to, e.g. { version: "v2" }. */
  labels: Readonly<Record<string, string>>;
  /** Share of calls in percent, 0..100, to 0.01. */
  percent: number;
}

export interface SplitOptions {
  splits: readonly SplitRule[];
  /** Makes the balancer used inside each group. */
  inner: () => Balancer;
}

const BUCKETS = 10_000;
const SPLIT_SEED = 0x2f0b3c1d;

interface SplitGroup {
  keys: string[];
  labels: Readonly<Record<string, string>>;
  upTo: number; // exclusive upper bucket
  members: Candidate[];
  balancer: Balancer;
  prefix: string;
}

/**
 * Traffic splits for canary and A/B: `percent` of calls go to the instances matching each
 * rule's labels; the rest go to instances matching no rule (the stable version). A call
 * with a routing key lands in a bucket by the key's hash, so one key always sees the same
 * version; without a key, calls step through the buckets by the golden ratio, which hits
 * the exact share over any long run with no random source. A group with no instances
 * hands its share to the stable group (and the stable share goes to every instance when
 * there is no stable instance), so a canary that is down costs no calls.
 */
export class SplitBalancer implements Balancer {
  private readonly membership = new MembershipTracker();
  private readonly groups: SplitGroup[];
  private readonly rest: { members: Candidate[]; balancer: Balancer; prefix: string };
  private readonly all: Balancer;
  private readonly sequence = new GoldenSequence();

  constructor(private readonly options: SplitOptions) {
    let upTo = 0;
    this.groups = options.splits.map((s) => {
      upTo += Math.round(s.percent * (BUCKETS / 100));
      return {
        keys: Object.keys(s.labels),
        labels: s.labels,
        upTo,
        members: [],
        balancer: options.inner(),
        prefix: `split ${s.percent}% → ${formatLabels(s.labels)}`,
      };
    });
    if (upTo > BUCKETS) throw new RangeError("split percentages add up to more than 100");
    this.rest = { members: [], balancer: options.inner(), prefix: `split remaining ${(BUCKETS - upTo) / 100}% → stable` };
    this.all = options.inner();
  }

  pick(candidates: readonly Candidate[], ctx: PickContext): Pick | undefined {
    if (this.membership.changed(candidates)) this.regroup(candidates);
    let bucket: number;
    if (ctx.routingKey !== undefined) {
      bucket = hashString(ctx.routingKey, SPLIT_SEED) % BUCKETS;
    } else {
      bucket = Math.floor(this.sequence.next() * BUCKETS);
    }
    for (let i = 0; i < this.groups.length; i++) {
      const g = this.groups[i]!;
      if (bucket < g.upTo) {
        if (g.members.length === 0) break;
        const p = g.balancer.pick(g.members, ctx);
        if (p !== undefined) return new WrappedPick(p, g.prefix);
        break; // canary unusable: fall through to stable
      }
    }
    if (this.rest.members.length > 0) {
      const p = this.rest.balancer.pick(this.rest.members, ctx);
      if (p !== undefined) return new WrappedPick(p, this.rest.prefix);
    }
    const p = this.all.pick(candidates, ctx);
    return p && new WrappedPick(p, "split target unavailable, any instance");
  }

  private regroup(candidates: readonly Candidate[]): void {
    for (const g of this.groups) g.members = [];
    this.rest.members = [];
    for (const c of candidates) {
      const g = this.groups.find((x) => matchesLabels(c, x.labels, x.keys));
      (g ?? this.rest).members.push(c);
    }
  }

  describe(): string {
    const parts = this.options.splits.map((s) => `${s.percent}% ${formatLabels(s.labels)}`);
    return `split ${parts.join(", ")}, rest stable → ${this.all.describe()}`;
  }
}
