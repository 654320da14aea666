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
 * Remembers the membership (ids in order) of the last array seen, so a balancer rebuilds
 * its precomputed state only when membership really changes. Identity is the fast path;
 * an id-by-id compare catches a fresh array with the same members.
 */
export class MembershipTracker {
  private last: readonly Candidate[] | undefined;
  private ids: string[] = [];

  /** True when `candidates` has different members (or order) than the previous call. */
  changed(candidates: readonly Candidate[]): boolean {
    if (candidates === this.last) return false;
    this.last = candidates;
    const ids = this.ids;
    let same = ids.length === candidates.length;
    for (let i = 0; same && i < ids.length; i++) same = ids[i] === candidates[i]!.id;
    if (same) return false;
    this.ids = candidates.map((c) => c.id);
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
