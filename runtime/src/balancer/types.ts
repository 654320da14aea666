// The contract between the router and a balancer. The router calls `pick` once per call
// (and once per retry attempt) with the instances that may serve it.

/** One instance of a service as the balancer sees it. The router owns these objects and
 *  updates `outstanding`, `healthy` and `weight` in place; balancers only read them. */
export interface Candidate {
  /** Stable instance id (Hello.instance_id). */
  readonly id: string;
  /** Relative weight (Hello.weight); 0, negative or non-finite counts as 1. */
  weight: number;
  readonly labels: Readonly<Record<string, string>>;
  /** Calls in flight on this instance right now. */
  outstanding: number;
  /** A candidate with `healthy === false` is never picked (the router may pass every
   *  instance with flags instead of a filtered array; both work). It means "may take a new
   *  call now": InstancePool (runtime/src/resilience) clears it for instances that are
   *  unhealthy, ejected, draining or at their concurrency limit. */
  healthy: boolean;
}

export interface PickContext {
  /** Full method path, e.g. "/demo.v1.Echo/Say". */
  readonly method: string;
  /** The call's routing key (from metadata or a request field), when the method has one. */
  readonly routingKey?: string | undefined;
  /** Reads a request metadata value (first value of a text header). */
  readonly metadata?: ((key: string) => string | undefined) | undefined;
}

/** The chosen instance and why, for the debug panel. `reason` may be a getter that is
 *  only formatted when read, so that picking never pays for string building. */
export interface Pick {
  readonly candidate: Candidate;
  readonly reason: string;
}

/**
 * A strategy. `pick` returns undefined when no candidate may serve the call (none given,
 * none healthy, or a subset/pin rule refused every one); the router then fails the call
 * with UNAVAILABLE or waits for ready.
 *
 * Membership changes are detected from the array: the router must pass the SAME array
 * object while membership is unchanged and a new one when an instance joins or leaves
 * (copy-on-write). A fresh array holding the same Candidate objects in the same order is
 * also recognised (compared object by object), so passing a new array per call is correct,
 * only slower. When an instance's labels change (a new Hello under the same id), give it
 * a new `labels` object (never mutate the old one) and pass a new array: balancers notice
 * either a new Candidate object or a new labels object in its place.
 */
export interface Balancer {
  pick(candidates: readonly Candidate[], ctx: PickContext): Pick | undefined;
  /** One line describing the configured strategy, e.g. "subset tenant=<x-tenant> → round robin". */
  describe(): string;
}

/** A plain function as a strategy; it may return a candidate or a full Pick. */
export type CustomPickFunction = (candidates: readonly Candidate[], ctx: PickContext) => Candidate | Pick | undefined;

/** A source of uniform random numbers in [0, 1); injectable so tests are deterministic. */
export type RandomSource = () => number;
