import type { Candidate } from "../../src/balancer/index.js";

export function candidate(id: string, init: Partial<Omit<Candidate, "id">> = {}): Candidate {
  return { id, weight: init.weight ?? 1, labels: init.labels ?? {}, outstanding: init.outstanding ?? 0, healthy: init.healthy ?? true };
}

export function candidates(n: number, init: (i: number) => Partial<Omit<Candidate, "id">> = () => ({})): Candidate[] {
  return Array.from({ length: n }, (_, i) => candidate(`inst-${i}`, init(i)));
}

/** How many times each id was picked over `n` picks. */
export function countPicks(n: number, pick: (i: number) => Candidate | undefined): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const c = pick(i);
    const id = c?.id ?? "<none>";
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

export function metadata(entries: Record<string, string>): (key: string) => string | undefined {
  return (key) => entries[key];
}
