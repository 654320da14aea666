// Which failed attempts may be retried, how long to back off, and the budget that keeps
// retries from multiplying an outage.
import type { DescMethod } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import type { Clock } from "./clock.js";
import { StatusCode, type ResolvedOptions } from "./options.js";

/** True for methods whose proto declares `option idempotency_level = IDEMPOTENT` or
 *  `NO_SIDE_EFFECTS`: running them twice is harmless, so an UNAVAILABLE may be retried
 *  even when the instance may have started on it. */
export function isIdempotent(method: Pick<DescMethod, "idempotency">): boolean {
  return method.idempotency === MethodOptions_IdempotencyLevel.IDEMPOTENT || method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS;
}

const BUCKETS = 10;

/**
 * Retry budget (Finagle's idea): over a sliding window, retries may be at most
 * `ratio × requests + minRetriesPerSecond × window seconds`. During an outage every call
 * fails and wants a retry; the budget turns "each call tried maxAttempts times" (3× load
 * on whatever is left) into at most +20 % load. Counts live in ten buckets of a tenth of
 * the window each, so old traffic ages out smoothly and memory is constant.
 */
export class RetryBudget {
  private readonly requests = new Float64Array(BUCKETS);
  private readonly retries = new Float64Array(BUCKETS);
  private readonly bucketMs: number;
  private bucket = 0;
  private bucketStart: number;

  constructor(
    private readonly clock: Clock,
    private readonly options: ResolvedOptions["retry"]["budget"],
  ) {
    this.bucketMs = options.windowMs / BUCKETS;
    this.bucketStart = clock.now();
  }

  /** Counts one call (its first attempt). */
  recordRequest(): void {
    this.roll();
    this.requests[this.bucket]!++;
  }

  /** Takes one retry from the budget; false when the budget is spent. */
  tryRetry(): boolean {
    this.roll();
    let req = 0;
    let ret = 0;
    for (let i = 0; i < BUCKETS; i++) {
      req += this.requests[i]!;
      ret += this.retries[i]!;
    }
    const allowed = this.options.ratio * req + (this.options.minRetriesPerSecond * this.options.windowMs) / 1000;
    if (ret + 1 > allowed) return false;
    this.retries[this.bucket]!++;
    return true;
  }

  /** Requests and retries counted in the current window (for tests and the debug panel). */
  totals(): { requests: number; retries: number } {
    this.roll();
    let requests = 0;
    let retries = 0;
    for (let i = 0; i < BUCKETS; i++) {
      requests += this.requests[i]!;
      retries += this.retries[i]!;
    }
    return { requests, retries };
  }

  private roll(): void {
    const now = this.clock.now();
    let steps = Math.floor((now - this.bucketStart) / this.bucketMs);
    if (steps <= 0) return;
    this.bucketStart += steps * this.bucketMs;
    if (steps > BUCKETS) steps = BUCKETS;
    for (let s = 0; s < steps; s++) {
      this.bucket = (this.bucket + 1) % BUCKETS;
      this.requests[this.bucket] = 0;
      this.retries[this.bucket] = 0;
    }
  }
}

/** How one attempt ended, as the router saw it. */
export interface AttemptResult {
  /** The gRPC status the attempt ended with (0 = OK). */
  code: number;
  /** False when the instance never received the call: the router could not open it on the
   *  instance's stream (gone, closing, or refused before Open was written). */
  delivered: boolean;
  /** True once anything of the response (headers or a message) went to the client; a
   *  committed call can never be retried. */
  committed?: boolean;
  /** False when the router no longer holds every request message sent so far (a client
   *  stream it did not buffer), so it could not replay the call. Default true. */
  replayable?: boolean;
}

export interface RetryDecision {
  retry: boolean;
  /** Milliseconds to wait before the next attempt (0 when not retrying). */
  delayMs: number;
  /** Why, in words, for logs and the debug panel. */
  reason: string;
  /** Set when this attempt's failure ejected its instance: the ejection's reason, in words. */
  ejected?: string;
}

export interface RetryState {
  /** Attempts made so far, this one included. */
  attempts: number;
  /** Retries already made because an attempt was not delivered. */
  undeliveredRetries: number;
  idempotent: boolean;
  /** The call is over for the client (cancelled or past its deadline). */
  finished: boolean;
}

const CODE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries({
    ...StatusCode,
    INVALID_ARGUMENT: 3,
    NOT_FOUND: 5,
    ALREADY_EXISTS: 6,
    PERMISSION_DENIED: 7,
    FAILED_PRECONDITION: 9,
    ABORTED: 10,
    OUT_OF_RANGE: 11,
    UNIMPLEMENTED: 12,
    UNAUTHENTICATED: 16,
  }).map(([k, v]) => [v, k]),
);

export function codeName(code: number): string {
  return CODE_NAMES[code] ?? `code ${code}`;
}

const NO = (reason: string): RetryDecision => ({ retry: false, delayMs: 0, reason });

/**
 * The retry rule, gRPC's semantics: a call that never reached an instance is retried
 * (elsewhere) always; one that reached an instance is retried only for a code in
 * `retryOn` (UNAVAILABLE) on an idempotent method, never once the response has started,
 * and only while the budget allows.
 */
export function decideRetry(
  result: AttemptResult,
  state: RetryState,
  options: ResolvedOptions["retry"],
  budget: RetryBudget,
  random: () => number,
): RetryDecision {
  if (result.code === StatusCode.OK) return NO("succeeded");
  if (state.finished) return NO("the call is over (cancelled or past its deadline)");
  if (result.committed) return NO("the response had started");
  if (result.replayable === false) return NO("the request stream cannot be replayed");
  if (!result.delivered) {
    if (state.undeliveredRetries >= options.maxUndeliveredRetries)
      return NO(`not delivered, and ${options.maxUndeliveredRetries} retries of undelivered attempts were made`);
    return { retry: true, delayMs: 0, reason: "never delivered to the instance: retrying on another" };
  }
  const name = codeName(result.code);
  if (!options.retryOn.includes(result.code)) return NO(`${name} is not retried`);
  if (!state.idempotent) return NO(`${name} on a method that is not idempotent (idempotency_level)`);
  const retriesSoFar = state.attempts - 1 - state.undeliveredRetries;
  if (retriesSoFar + 1 >= options.maxAttempts) return NO(`${name} after ${retriesSoFar + 1} attempts (maxAttempts ${options.maxAttempts})`);
  if (!budget.tryRetry()) return NO(`${name}, but the retry budget is spent (an outage must not multiply load)`);
  const cap = Math.min(options.initialBackoffMs * Math.pow(options.backoffMultiplier, retriesSoFar), options.maxBackoffMs);
  return { retry: true, delayMs: Math.floor(random() * cap), reason: `${name} on an idempotent method: retry ${retriesSoFar + 1}` };
}

/**
 * The retry rule and budget of one service, for a router that runs its own dispatch:
 *
 *   const retries = policy.start(isIdempotent(method));   // when the call arrives
 *   …the attempt fails…
 *   const d = retries.after({ code, delivered, committed, replayable, finished });
 *   if (d.retry) setTimeout(() => dispatchAgain(call), d.delayMs); else endCall(code);
 */
export class RetryPolicy {
  readonly budget: RetryBudget;

  constructor(
    readonly options: ResolvedOptions["retry"],
    clock: Clock,
    private readonly random: () => number = Math.random,
  ) {
    this.budget = new RetryBudget(clock, options.budget);
  }

  /** A call arrives: it counts toward the budget's requests. */
  start(idempotent: boolean): CallRetries {
    this.budget.recordRequest();
    return new CallRetries(this, idempotent);
  }

  /** @internal */
  decide(result: AttemptResult, state: RetryState): RetryDecision {
    return decideRetry(result, state, this.options, this.budget, this.random);
  }
}

/** One call's retry state: how many attempts so far, and how many were never delivered. */
export class CallRetries {
  /** Attempts made so far (the first one included). */
  attempts = 1;
  undeliveredRetries = 0;

  constructor(
    private readonly policy: RetryPolicy,
    readonly idempotent: boolean,
  ) {}

  /** Decides about the attempt that just ended; on a retry, counts the next attempt.
   *  `finished`: the client cancelled or its deadline passed. */
  after(result: AttemptResult & { finished?: boolean }): RetryDecision {
    const d = this.policy.decide(result, {
      attempts: this.attempts,
      undeliveredRetries: this.undeliveredRetries,
      idempotent: this.idempotent,
      finished: result.finished === true,
    });
    if (d.retry) {
      this.attempts++;
      if (!result.delivered) this.undeliveredRetries++;
    }
    return d;
  }
}
