import type { Balancer, Candidate, Pick, PickContext } from "./types.js";
import { FixedPick, MembershipTracker, WrappedPick } from "./util.js";
import type { SubsetFallback } from "./subset.js";

export interface PinOptions {
  /** Request metadata key that names an instance id, e.g. "x-grpcrouter-instance". */
  metadataKey: string;
  /** When the named instance is absent or unhealthy: "fail" (default) or "any". */
  fallback?: SubsetFallback;
  /** Picks for calls that do not name an instance. */
  inner: Balancer;
}

/** Pinning: a call that names an instance id in a metadata key goes to that instance. */
export class PinBalancer implements Balancer {
  private readonly membership = new MembershipTracker();
  private byId = new Map<string, Candidate>();
  private readonly reason: string;

  constructor(private readonly options: PinOptions) {
    this.reason = `pinned by ${options.metadataKey}`;
  }

  pick(candidates: readonly Candidate[], ctx: PickContext): Pick | undefined {
    const id = ctx.metadata?.(this.options.metadataKey);
    if (id === undefined) return this.options.inner.pick(candidates, ctx);
    if (this.membership.changed(candidates)) this.byId = new Map(candidates.map((c) => [c.id, c]));
    const c = this.byId.get(id);
    if (c !== undefined && c.healthy !== false) return new FixedPick(c, this.reason);
    if ((this.options.fallback ?? "fail") === "fail") return undefined;
    const p = this.options.inner.pick(candidates, ctx);
    return p && new WrappedPick(p, `pinned instance '${id}' unavailable`);
  }

  describe(): string {
    return `pin by ${this.options.metadataKey} (else ${this.options.inner.describe()})`;
  }
}
