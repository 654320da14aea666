import type { Balancer, Candidate, Pick, PickContext } from "./types.js";
import { MembershipTracker, WrappedPick } from "./util.js";

/** Where a selector's label value comes from: a fixed value, a request metadata key, or
 *  the call's routing key. */
export type LabelSource = string | { metadata: string } | { routingKey: true };

/** What to do when a rule cannot be met: refuse the call, or use any instance. */
export type SubsetFallback = "fail" | "any";

export interface SubsetOptions {
  /** label key → required value, e.g. { tenant: { metadata: "x-tenant" } }. */
  selector: Readonly<Record<string, LabelSource>>;
  /** When no instance carries the labels. "fail" (the default) never leaks a call. */
  fallback?: SubsetFallback;
  /** When a metadata/routing-key value the selector needs is absent from the call. */
  onMissing?: SubsetFallback;
  /** Makes the balancer that picks inside one subset (one per distinct subset). */
  inner: () => Balancer;
}

interface Group {
  members: Candidate[];
  balancer: Balancer;
  prefix: string;
}

/**
 * Label subsets: a call goes only to instances whose labels equal the selector's values
 * (e.g. tenant=acme only to instances labelled tenant=acme). Each distinct subset gets
 * its own array, built once per membership change, and its own inner balancer, so round
 * robin counters and hash rings are per subset and the inner balancer sees a stable array.
 * Subsets are created only for values some instance carries, so arbitrary metadata values
 * from clients cannot grow memory.
 */
export class SubsetBalancer implements Balancer {
  private readonly membership = new MembershipTracker();
  private readonly keys: string[];
  private readonly fixed: Record<string, string> = {};
  private readonly dynamic: { label: string; source: { metadata: string } | { routingKey: true } }[] = [];
  private readonly fallback: SubsetFallback;
  private readonly onMissing: SubsetFallback;
  private groups = new Map<string, Group>();
  private readonly anyBalancer: Balancer;
  private readonly values: string[];

  constructor(private readonly options: SubsetOptions) {
    this.keys = Object.keys(options.selector);
    for (const k of this.keys) {
      const src = options.selector[k]!;
      if (typeof src === "string") this.fixed[k] = src;
      else this.dynamic.push({ label: k, source: src });
    }
    this.values = new Array<string>(this.keys.length).fill("");
    this.fallback = options.fallback ?? "fail";
    this.onMissing = options.onMissing ?? "fail";
    this.anyBalancer = options.inner();
  }

  pick(candidates: readonly Candidate[], ctx: PickContext): Pick | undefined {
    if (this.membership.changed(candidates)) this.groups.clear();
    // Resolve the selector for this call; the group key is the values joined (a single
    // label's value is used as is, so the common case allocates nothing).
    const values = this.values;
    for (let i = 0; i < this.keys.length; i++) {
      const k = this.keys[i]!;
      const src = this.options.selector[k]!;
      let v: string | undefined;
      if (typeof src === "string") v = src;
      else if ("metadata" in src) v = ctx.metadata?.(src.metadata);
      else v = ctx.routingKey;
      if (v === undefined) {
        if (this.onMissing === "fail") return undefined;
        const p = this.anyBalancer.pick(candidates, ctx);
        return p && new WrappedPick(p, `subset value for ${k} missing, any instance`);
      }
      values[i] = v;
    }
    const groupKey = values.length === 1 ? values[0]! : values.join("\u0000");
    let group = this.groups.get(groupKey);
    if (group === undefined) {
      group = this.makeGroup(candidates);
      if (group === undefined) {
        if (this.fallback === "fail") return undefined;
        const p = this.anyBalancer.pick(candidates, ctx);
        return p && new WrappedPick(p, `subset ${this.describeValues()} empty, any instance`);
      }
      this.groups.set(groupKey, group);
    }
    const p = group.balancer.pick(group.members, ctx);
    if (p !== undefined) return new WrappedPick(p, group.prefix);
    // Members exist but none is usable (all unhealthy/full): same rule as an empty subset.
    if (this.fallback === "fail") return undefined;
    const any = this.anyBalancer.pick(candidates, ctx);
    return any && new WrappedPick(any, `subset ${group.prefix} unavailable, any instance`);
  }

  private makeGroup(candidates: readonly Candidate[]): Group | undefined {
    const members: Candidate[] = [];
    outer: for (const c of candidates) {
      for (let i = 0; i < this.keys.length; i++) {
        if (c.labels[this.keys[i]!] !== this.values[i]) continue outer;
      }
      members.push(c);
    }
    if (members.length === 0) return undefined;
    const prefix = `subset ${this.describeValues()} (${members.length} of ${candidates.length})`;
    return { members, balancer: this.options.inner(), prefix };
  }

  private describeValues(): string {
    return this.keys.map((k, i) => `${k}=${this.values[i]}`).join(",");
  }

  describe(): string {
    const sel = this.keys
      .map((k) => {
        const src = this.options.selector[k]!;
        if (typeof src === "string") return `${k}=${src}`;
        return "metadata" in src ? `${k}=<${src.metadata}>` : `${k}=<routing key>`;
      })
      .join(",");
    return `subset ${sel} (empty: ${this.fallback}) → ${this.anyBalancer.describe()}`;
  }
}
