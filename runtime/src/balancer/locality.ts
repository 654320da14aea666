import type { Balancer, Candidate, Pick, PickContext } from "./types.js";
import { GoldenSequence, MembershipTracker, WrappedPick } from "./util.js";

/** Where this router runs. Either part may be unknown. */
export interface Locality {
  zone?: string | undefined;
  region?: string | undefined;
}

export interface LocalityOptions {
  /** The router's own zone and region; with neither known, calls go to every instance. */
  locality: Locality;
  /** Instance label holding its zone (default "zone"). */
  zoneLabel?: string | undefined;
  /** Instance label holding its region (default "region"). */
  regionLabel?: string | undefined;
  /**
   * Envoy's overprovisioning factor: a level keeps all of its traffic while
   * healthy share × factor ≥ 1 (default 1.4, so losing up to ~28 % of the local instances
   * moves no call away), and sheds the rest proportionally below that.
   */
  overprovisioning?: number | undefined;
  /** Makes the balancer used inside each level. */
  inner: () => Balancer;
}

const LEVEL_NAMES = ["local zone", "same region", "other regions"] as const;

interface Level {
  members: Candidate[];
  balancer: Balancer;
  prefix: string;
}

/**
 * Zone-aware routing with locality failover by priority, after Envoy: instances in the
 * router's zone come first (level 0), then the rest of its region (level 1), then every
 * other instance (level 2). Each level takes min(remaining load, healthy share × factor);
 * what it cannot take spills to the next, so a zone that loses some instances keeps its
 * calls local until it is really short, and a zone that loses all of them fails over at
 * once. Levels are rebuilt only when membership changes; the healthy share is counted per
 * pick because health flags change in place. Calls step through the load split by the
 * golden ratio (exact shares over any run, no random source), as `split` does.
 */
export class LocalityBalancer implements Balancer {
  private readonly membership = new MembershipTracker();
  private readonly levels: Level[];
  private readonly zoneLabel: string;
  private readonly regionLabel: string;
  private readonly factor: number;
  private readonly known: boolean;
  private readonly sequence = new GoldenSequence();
  /** Scratch for the per-pick load split (no allocation per call). */
  private readonly load = [0, 0, 0];

  constructor(private readonly options: LocalityOptions) {
    this.zoneLabel = options.zoneLabel ?? "zone";
    this.regionLabel = options.regionLabel ?? "region";
    this.factor = options.overprovisioning ?? 1.4;
    const { zone, region } = options.locality;
    this.known = Boolean(zone) || Boolean(region);
    const here = [zone ? `zone=${zone}` : "", region ? `region=${region}` : ""].filter(Boolean).join(",");
    this.levels = LEVEL_NAMES.map((name) => ({ members: [], balancer: options.inner(), prefix: `locality ${name} (${here || "unknown"})` }));
  }

  /** 0 for the router's zone, 1 for its region, 2 for anywhere else. */
  private levelOf(c: Candidate): number {
    const { zone, region } = this.options.locality;
    const cz = c.labels[this.zoneLabel];
    const cr = c.labels[this.regionLabel];
    // An instance in our zone is local whatever region label it has or lacks; zone names
    // are unique within a region, and a zone label alone is the common case.
    if (zone && cz === zone && (!region || cr === undefined || cr === region)) return 0;
    if (region && cr === region) return 1;
    return 2;
  }

  private regroup(candidates: readonly Candidate[]): void {
    for (const l of this.levels) l.members = [];
    for (const c of candidates) this.levels[this.known ? this.levelOf(c) : 0]!.members.push(c);
  }

  pick(candidates: readonly Candidate[], ctx: PickContext): Pick | undefined {
    if (this.membership.changed(candidates)) this.regroup(candidates);
    const load = this.load;
    let remaining = 1;
    let total = 0;
    for (let i = 0; i < 3; i++) {
      const members = this.levels[i]!.members;
      let healthy = 0;
      for (let j = 0; j < members.length; j++) if (members[j]!.healthy !== false) healthy++;
      const capacity = members.length === 0 ? 0 : Math.min(1, (healthy / members.length) * this.factor);
      const share = Math.min(remaining, capacity);
      load[i] = share;
      remaining -= share;
      total += share;
    }
    if (total === 0) return undefined;
    // When every level is degraded the shares add up to less than 1: spread the calls in
    // proportion (Envoy normalises the same way) rather than failing the rest.
    let point = this.sequence.next() * total;
    let first = 0;
    for (; first < 2; first++) {
      if (point < load[first]!) break;
      point -= load[first]!;
    }
    // The chosen level first, then the others in priority order: a level whose inner
    // balancer finds nobody (all busy at their limits) never fails a call another can take.
    for (let k = 0; k < 3; k++) {
      const i = k === 0 ? first : k <= first ? k - 1 : k;
      const level = this.levels[i]!;
      if (level.members.length === 0) continue;
      const p = level.balancer.pick(level.members, ctx);
      if (p !== undefined) return new WrappedPick(p, level.prefix);
    }
    return undefined;
  }

  describe(): string {
    const { zone, region } = this.options.locality;
    if (!this.known) return `locality (router zone unknown: every instance) → ${this.levels[0]!.balancer.describe()}`;
    const here = [zone ? `zone=${zone}` : "", region ? `region=${region}` : ""].filter(Boolean).join(",");
    return `locality ${here} (labels ${this.zoneLabel}/${this.regionLabel}, overprovisioning ${this.factor}) → ${this.levels[0]!.balancer.describe()}`;
  }
}
