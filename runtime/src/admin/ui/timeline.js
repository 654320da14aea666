// Why a call went where it went: the route of one call as the router decided it — the
// balancer's pick (strategy, reason: locality, routing key, weight), time queued for an
// instance, each later attempt and why the one before failed (retries with backoff), the
// router's own refusals (rate limit, paused service, no instance) and ejections this call's
// failure caused — drawn as the first part of the call's timeline.
import { formatDuration, formatClock, statusName, tsMs } from "./format.js";

const KINDS = {
  KIND_ATTEMPT: "attempt",
  KIND_RETRY: "retry",
  KIND_REFUSED: "refused",
  KIND_EJECTED: "ejected",
};

/** A CallDecision (proto3 JSON) as the page keeps it. */
export function decisionOf(raw) {
  return {
    kind: KINDS[raw.kind] ?? "unknown",
    attempt: raw.attempt ?? 0,
    instanceId: raw.instanceId ?? "",
    reason: raw.reason ?? "",
    queuedMs: raw.queuedMs ?? 0,
    code: raw.code ?? 0,
    backoffMs: raw.backoffMs ?? 0,
    timeMs: tsMs(raw.time),
  };
}

/** Records a decision on its call; a later attempt moves the call to its instance. */
export function addDecision(call, raw) {
  const d = decisionOf(raw);
  call.decisions.push(d);
  if (d.kind === "attempt" && d.instanceId) call.instanceId = d.instanceId;
  if (d.kind === "retry") call.retries++;
}

/** Facts for the call's header: strategy, queueing, routing key, attempts. */
export function routeFacts(call, el) {
  const facts = [];
  const add = (k, v) => facts.push(el("dt", {}, k), el("dd", { "data-fact": k.toLowerCase() }, v));
  if (call.policy) add("Policy", call.policy);
  if (call.routingKey) add("Routing key", el("span", { class: "mono" }, call.routingKey));
  if (call.queuedMs) add("Queued", formatDuration(call.queuedMs));
  const attempts = 1 + call.decisions.filter((d) => d.kind === "attempt").length;
  if (attempts > 1) add("Attempts", String(attempts));
  return facts;
}

function step(el, kind, icon, title, detail, attrs = {}) {
  return el(
    "li",
    { class: `route-step ${kind}`, "data-decision": kind, ...attrs },
    el("span", { class: "route-icon", "aria-hidden": "true" }, icon),
    el("span", { class: "route-title" }, title),
    detail ? el("span", { class: "route-detail muted" }, detail) : undefined,
  );
}

/**
 * The route part of the timeline: the first pick, then every decision in order, then the
 * end. Each step says where and why, in the router's words.
 */
export function routeTimeline(call, el) {
  const steps = [];
  const at = (ms) => `+${formatDuration(Math.max(0, ms - call.startMs))}`;
  const firstInstance = call.firstInstanceId;
  if (firstInstance) {
    const queued = call.queuedMs ? ` · queued ${formatDuration(call.queuedMs)}` : "";
    steps.push(
      step(el, "attempt", "→", `attempt 1 → ${firstInstance}`, `${call.firstReason || "picked"}${queued}`, {
        "data-attempt": "1",
        "data-instance": firstInstance,
      }),
    );
  }
  for (const d of call.decisions) {
    if (d.kind === "retry") {
      const backoff = d.backoffMs ? ` · backing off ${formatDuration(d.backoffMs)}` : "";
      steps.push(
        step(el, "retry", "↻", `attempt ${d.attempt} on ${d.instanceId} failed: ${statusName(d.code)}`, `${d.reason}${backoff} · ${at(d.timeMs)}`, {
          "data-attempt": String(d.attempt),
          "data-instance": d.instanceId,
        }),
      );
    } else if (d.kind === "attempt") {
      const queued = d.queuedMs ? ` · queued ${formatDuration(d.queuedMs)}` : "";
      steps.push(
        step(el, "attempt", "→", `attempt ${d.attempt} → ${d.instanceId}`, `${d.reason}${queued} · ${at(d.timeMs)}`, {
          "data-attempt": String(d.attempt),
          "data-instance": d.instanceId,
        }),
      );
    } else if (d.kind === "ejected") {
      steps.push(step(el, "ejected", "⊘", `${d.instanceId} ejected after this call`, d.reason, { "data-instance": d.instanceId }));
    } else if (d.kind === "refused") {
      steps.push(step(el, "refused", "⛔", "refused by the router", d.reason));
    }
  }
  if (call.ended) {
    const ok = call.ended.code === 0;
    steps.push(
      step(
        el,
        ok ? "ended ok" : "ended error",
        ok ? "✓" : "✗",
        `${statusName(call.ended.code)} after ${formatDuration(call.ended.durationMs)}`,
        ok ? "" : call.ended.message,
      ),
    );
  } else if (!firstInstance && call.decisions.length === 0) {
    steps.push(step(el, "waiting", "…", "waiting for an instance", `since ${formatClock(call.startMs)}`));
  }
  return el("ol", { class: "route", "aria-label": "How the router routed this call" }, ...steps);
}
