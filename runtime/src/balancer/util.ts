// Small shared helpers: hashing, seeded randomness, weights, membership tracking.
import type { Candidate, Pick } from "./types.js";

/**
 * 32-bit hash of a string's UTF-16 code units (the murmur3 mixing steps, one code unit per
 * round). It allocates nothing, which matters because the routing key is hashed per call;
 * `seed` gives independent hashes (virtual nodes, split buckets).
 */
export function hashString(s: string, seed = 0): number {
  let h = seed | 0;
  for (let i = 0; i < s.length; i++) {
    let k = s.charCodeAt(i);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  h ^= s.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A deterministic random source (mulberry32) for tests, simulations and benchmarks. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Hello.weight semantics: 0 means the default of 1; nonsense never poisons the sums. */
export function weightOf(c: Candidate): number {
  const w = c.weight;
  return w > 0 && Number.isFinite(w) ? w : 1;
}

export function isUsable(c: Candidate): boolean {
  return c.healthy !== false;
}

/**
 * Steps through [0, 1) by the golden ratio: over any run of calls each stretch of the range
 * gets its exact share, with no random source (split and locality divide calls by it).
 */
export class GoldenSequence {
  private value = 0;

  next(): number {
    this.value += 0.6180339887498949;
    if (this.value >= 1) this.value -= 1;
    return this.value;
  }
}

/**
 * Remembers the members of the last array seen, so a balancer rebuilds its precomputed
 * state (groups, rings, id maps) only when membership really changes. Identity of the
 * array is the fast path; otherwise the members are compared object by object, not id by
 * id, and so are their `labels` objects: an instance that re-registers under the same id
 * (perhaps with new labels) must not be routed by stale labels or to a dead object.
 */
export class MembershipTracker {
  private last: readonly Candidate[] | undefined;
  private members: readonly Candidate[] = [];
  private labels: readonly object[] = [];

  /** True when `candidates` has different members (or order, or labels) than the previous call. */
  changed(candidates: readonly Candidate[]): boolean {
    if (candidates === this.last) return false;
    this.last = candidates;
    const members = this.members;
    let same = members.length === candidates.length;
    for (let i = 0; same && i < members.length; i++) same = members[i] === candidates[i] && this.labels[i] === candidates[i]!.labels;
    if (same) return false;
    this.members = candidates.slice();
    this.labels = candidates.map((c) => c.labels);
    return true;
  }
}

/** A Pick whose reason is a constant string. */
export class FixedPick implements Pick {
  constructor(
    readonly candidate: Candidate,
    readonly reason: string,
  ) {}
}

/** A Pick that prefixes the reason of an inner pick, formatted only when read. */
export class WrappedPick implements Pick {
  constructor(
    private readonly inner: Pick,
    private readonly prefix: string,
  ) {}
  get candidate(): Candidate {
    return this.inner.candidate;
  }
  get reason(): string {
    return `${this.prefix} → ${this.inner.reason}`;
  }
}

export function formatLabels(labels: Readonly<Record<string, string>>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
}

export function matchesLabels(c: Candidate, selector: Readonly<Record<string, string>>, keys: readonly string[]): boolean {
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    if (c.labels[k] !== selector[k]) return false;
  }
  return true;
}
