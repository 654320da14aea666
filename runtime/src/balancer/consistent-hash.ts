import type { Balancer, Candidate, Pick, PickContext } from "./types.js";
import { MembershipTracker, hashString, weightOf } from "./util.js";

export interface ConsistentHashOptions {
  /** Ring points per unit of weight. More points, smoother shares; 100 gives each
   *  instance its fair share within about ±10 %. */
  virtualNodes?: number;
  /** The c = 1+ε of bounded loads: an instance takes a call only while its outstanding
   *  calls are below ⌈c × average⌉ (weighted). Must be > 1; Infinity disables the bound. */
  loadFactor?: number;
  /** Serves calls that carry no routing key. */
  withoutKey: Balancer;
}

const KEY_SEED = 0x5bd1e995;
/** Bounds the ring's memory whatever the weights: points are scaled down past this. */
const MAX_RING_POINTS = 1 << 20;

/**
 * Consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam 2016) on a hash
 * ring with virtual nodes.
 *
 * Why a ring and not Maglev or rendezvous: the bounded-load rule is defined as "walk on
 * from the key's point to the next instance that is not full", which a ring gives for free
 * and in a stable order (so a key that spills over always spills to the same next
 * instance); a lookup is one binary search, O(log points), where rendezvous hashing costs
 * a hash per instance per call (300 hashes at 300 instances); and a join or a leave moves
 * only the keys on the arcs that instance gains or loses, where Maglev's table rebuild
 * moves a few extra keys. Weights are honoured by giving an instance weight × virtualNodes
 * points. The ring is rebuilt only on membership change.
 */
export class ConsistentHashBalancer implements Balancer {
  private readonly membership = new MembershipTracker();
  private readonly virtualNodes: number;
  private readonly loadFactor: number;
  private readonly withoutKey: Balancer;
  private points = new Uint32Array(0);
  private owners = new Uint32Array(0);
  private weightsSig = 0;

  constructor(options: ConsistentHashOptions) {
    this.virtualNodes = options.virtualNodes ?? 100;
    this.loadFactor = options.loadFactor ?? 1.25;
    this.withoutKey = options.withoutKey;
    if (!(this.virtualNodes >= 1)) throw new RangeError("virtualNodes must be ≥ 1");
    if (!(this.loadFactor > 1)) throw new RangeError("loadFactor must be > 1");
  }

  pick(candidates: readonly Candidate[], ctx: PickContext): Pick | undefined {
    const key = ctx.routingKey;
    if (key === undefined) return this.withoutKey.pick(candidates, ctx);
    // One pass: load for the bound, and a fingerprint of the weights (a weight changed at
    // runtime re-sizes that instance's arcs).
    let total = 1;
    let weights = 0;
    let sig = 0;
    for (let i = 0; i < candidates.length; i++) {
      const c = candidates[i]!;
      const w = weightOf(c);
      sig = (Math.imul(sig, 31) + Math.round(w * 1024)) | 0;
      if (c.healthy === false) continue;
      total += c.outstanding;
      weights += w;
    }
    if (this.membership.changed(candidates) || sig !== this.weightsSig) {
      this.weightsSig = sig;
      this.build(candidates);
    }
    const points = this.points;
    const size = points.length;
    if (size === 0) return undefined;

    const h = hashString(key, KEY_SEED);
    // First ring point ≥ h, wrapping to 0.
    let lo = 0;
    let hi = size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (points[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    const start = lo === size ? 0 : lo;

    // Weighted capacity: c × (calls in flight + this one) × share of weight.
    const perWeight = (this.loadFactor * total) / weights;

    let skipped = 0;
    let last = -1;
    for (let step = 0, i = start; step < size; step++, i = i + 1 === size ? 0 : i + 1) {
      const owner = this.owners[i]!;
      if (owner === last) continue; // consecutive points of one full instance
      last = owner;
      const c = candidates[owner]!;
      if (c.healthy === false) {
        skipped++;
        continue;
      }
      if (this.loadFactor !== Infinity && c.outstanding + 1 > Math.ceil(perWeight * weightOf(c))) {
        skipped++;
        continue;
      }
      return new HashPick(c, key, h, points[i]!, skipped);
    }
    return undefined;
  }

  private build(candidates: readonly Candidate[]): void {
    let wanted = 0;
    for (const c of candidates) wanted += Math.max(1, Math.round(this.virtualNodes * weightOf(c)));
    const scale = wanted > MAX_RING_POINTS ? MAX_RING_POINTS / wanted : 1;
    // point × 2^20 + owner fits a double exactly (32 + 20 bits): one numeric sort orders both.
    const packed: number[] = [];
    for (let owner = 0; owner < candidates.length; owner++) {
      const c = candidates[owner]!;
      const count = Math.max(1, Math.round(this.virtualNodes * weightOf(c) * scale));
      // Points depend on the id alone, so an instance keeps its arcs across rebuilds.
      for (let v = 0; v < count; v++) packed.push(hashString(c.id, v + 1) * 0x100000 + owner);
    }
    const sorted = Float64Array.from(packed).sort();
    this.points = new Uint32Array(sorted.length);
    this.owners = new Uint32Array(sorted.length);
    for (let i = 0; i < sorted.length; i++) {
      const p = sorted[i]!;
      this.points[i] = Math.floor(p / 0x100000);
      this.owners[i] = p % 0x100000;
    }
  }

  describe(): string {
    const bound = this.loadFactor === Infinity ? "unbounded" : `load ≤ ${this.loadFactor}× average`;
    return `consistent hash (${this.virtualNodes} points per weight, ${bound}; no key → ${this.withoutKey.describe()})`;
  }
}

class HashPick implements Pick {
  constructor(
    readonly candidate: Candidate,
    private readonly key: string,
    private readonly hash: number,
    private readonly point: number,
    private readonly skipped: number,
  ) {}
  get reason(): string {
    const hex = (n: number) => "0x" + n.toString(16).padStart(8, "0");
    const spill = this.skipped > 0 ? ` after skipping ${this.skipped} full or unhealthy instance(s)` : "";
    return `hash of key '${this.key}' ${hex(this.hash)} → ring point ${hex(this.point)}${spill}`;
  }
}
