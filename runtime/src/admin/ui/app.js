// The dashboard: a live picture of a router built from its admin event stream (a snapshot,
// then events). Plain DOM, no framework and no build step, so the router can serve it and
// the VS Code webview can load the very same files (host.js: VS Code Elements there, plain
// controls in a browser). Rendering is batched to one pass per animation frame, so a burst
// of thousands of events costs one repaint.
import { callsToJsonl, durationMs, formatBytes, formatClock, formatDuration, grpcurlCommand, prettyJson, splitMethod, statusName, tsMs } from "./format.js";
import { connect } from "./sources.js";
import { button, icon, initHost, optionTag, setButton } from "./host.js";
import { Announcer } from "./live.js";
import { ChartsView, StatsModel } from "./charts.js";
import { TopologyView } from "./topology.js";
import { addDecision, routeFacts, routeTimeline } from "./timeline.js";
import { arrange, firstFailure, inView } from "./views.js";
import { OperatorActions, restoreFocus } from "./actions.js";
import { canReplay, replaySection } from "./replay.js";

/** Calls kept in the page; older ended calls are forgotten first. */
const MAX_CALLS = 2000;
/** Calls the list can scroll through (the newest); only the rows in view are drawn. */
const MAX_ROWS = MAX_CALLS;
/** Rows drawn above and below the visible ones, so a scroll shows rows at once. */
const OVERSCAN = 10;
/** Messages kept per call in the page. */
const MAX_MESSAGES = 500;
/** Events held while paused before the page gives up and resyncs on resume. */
const MAX_PAUSED = 50_000;

const $ = (id) => document.getElementById(id);
/** The operator's buttons and actions log (actions.js); made once the source is connected. */
let operator;

const state = {
  routerAddress: "",
  services: [],
  /** key "service\0id" → Instance (proto3 JSON) */
  instances: new Map(),
  /** callId (string) → call */
  calls: new Map(),
  selected: undefined,
  paused: false,
  held: [],
  heldOverflow: false,
  dropped: 0,
  /** Calls that started before this (ms) were cleared and stay hidden after a resync. */
  clearedBefore: 0,
  filters: { service: "", method: "", instance: "", status: "", view: "" },
  stats: new StatsModel(),
  /** Services an operator paused (snapshot, then action events). */
  pausedServices: new Set(),
};

const instKey = (i) => `${i.service}\u0000${i.id}`;

// ---- the model ----

function newCall(started) {
  const { service } = splitMethod(started.method);
  return {
    id: String(started.callId ?? "0"),
    raw: started,
    method: started.method ?? "",
    service,
    kind: started.kind ?? "",
    peer: started.peer ?? "",
    metadata: started.metadata ?? {},
    instanceId: started.instanceId ?? "",
    reason: started.reason ?? "",
    firstInstanceId: started.instanceId ?? "",
    firstReason: started.reason ?? "",
    queuedMs: started.queuedMs ?? 0,
    policy: started.policy ?? "",
    routingKey: started.routingKey ?? "",
    decisions: [],
    retries: 0,
    startMs: tsMs(started.time),
    headers: undefined,
    messages: [],
    messagesOmitted: 0,
    requests: 0,
    responses: 0,
    ended: undefined,
  };
}

function messageOf(raw) {
  return {
    raw,
    direction: raw.direction === "DIRECTION_RESPONSE" ? "response" : "request",
    size: raw.size ?? 0,
    timeMs: tsMs(raw.time),
    json: raw.json ?? "",
    jsonTruncated: raw.jsonTruncated ?? false,
    jsonError: raw.jsonError ?? "",
  };
}

function endedOf(raw) {
  return {
    raw,
    code: raw.code ?? 0,
    message: raw.message ?? "",
    trailers: raw.trailers ?? {},
    durationMs: durationMs(raw.duration),
    requests: raw.requests ?? 0,
    responses: raw.responses ?? 0,
  };
}

/** The call ended; messages the page never saw (a watcher without messages) still count. */
function endCall(call, raw) {
  call.ended = endedOf(raw);
  call.requests = Math.max(call.requests, call.ended.requests);
  call.responses = Math.max(call.responses, call.ended.responses);
}

function addMessage(call, raw) {
  const m = messageOf(raw);
  if (m.direction === "request") call.requests++;
  else call.responses++;
  if (call.messages.length < MAX_MESSAGES) call.messages.push(m);
  else call.messagesOmitted++;
}

function rememberCall(call) {
  if (call.startMs < state.clearedBefore && call.ended) return;
  state.calls.set(call.id, call);
  if (state.calls.size <= MAX_CALLS) return;
  for (const [id, c] of state.calls) {
    if (state.calls.size <= MAX_CALLS) break;
    if (c.ended && id !== state.selected) state.calls.delete(id);
  }
}

function applySnapshot(snap) {
  state.routerAddress = snap.routerAddress ?? "";
  state.stats.reset(snap.stats);
  state.services = snap.services ?? [];
  state.pausedServices = new Set(state.services.filter((s) => s.paused).map((s) => s.name));
  operator?.resetLog(snap.actions ?? []);
  state.instances = new Map((snap.instances ?? []).map((i) => [instKey(i), i]));
  const calls = new Map();
  for (const rec of snap.calls ?? []) {
    if (!rec.started) continue;
    const call = newCall(rec.started);
    if (call.startMs < state.clearedBefore && rec.ended) continue;
    if (rec.headers) call.headers = rec.headers.metadata ?? {};
    for (const d of rec.decisions ?? []) addDecision(call, d);
    for (const m of rec.messages ?? []) addMessage(call, m);
    call.messagesOmitted += rec.messagesOmitted ?? 0;
    if (rec.ended) endCall(call, rec.ended);
    calls.set(call.id, call);
  }
  state.calls = calls;
  if (state.selected && !calls.has(state.selected)) state.selected = undefined;
}

function apply(ev) {
  if (ev.snapshot) return applySnapshot(ev.snapshot);
  if (ev.instanceRegistered || ev.instanceChanged) {
    const i = ev.instanceRegistered ?? ev.instanceChanged;
    if (ev.instanceRegistered) announcer.instance(`instance ${i.id} of ${i.service} registered`);
    state.instances.set(instKey(i), i);
    return;
  }
  if (ev.instanceDeregistered) {
    const i = ev.instanceDeregistered;
    announcer.instance(`instance ${i.id} of ${i.service} left`);
    state.instances.delete(instKey(i));
    return;
  }
  if (ev.stats) return state.stats.add(ev.stats);
  if (ev.action) {
    if (ev.action.kind === "ACTION_KIND_PAUSE") state.pausedServices.add(ev.action.service);
    if (ev.action.kind === "ACTION_KIND_RESUME") state.pausedServices.delete(ev.action.service);
    operator?.logAction(ev.action, tsMs(ev.time));
    return;
  }
  if (ev.callDecision) {
    const c = state.calls.get(String(ev.callDecision.callId ?? ""));
    if (c) addDecision(c, ev.callDecision);
    return;
  }
  if (ev.callStarted) {
    announcer.callStarted();
    return rememberCall(newCall(ev.callStarted));
  }
  const id = String(ev.callHeaders?.callId ?? ev.callMessage?.callId ?? ev.callEnded?.callId ?? "");
  const call = state.calls.get(id);
  if (ev.callHeaders) {
    if (call) call.headers = ev.callHeaders.metadata ?? {};
  } else if (ev.callMessage) {
    if (call) addMessage(call, ev.callMessage);
  } else if (ev.callEnded) {
    if (ev.callEnded.code) announcer.callFailed(`${call?.method ?? "a call"} ${statusName(ev.callEnded.code)}`);
    if (call) endCall(call, ev.callEnded);
  } else if (ev.dropped !== undefined) {
    // The router dropped events for this watcher: our picture has a hole; start over.
    state.dropped += Number(ev.dropped);
    source.resync();
  }
}

// ---- events in ----

function onEvent(ev) {
  if (state.paused && !ev.snapshot) {
    if (state.held.length < MAX_PAUSED) state.held.push(ev);
    else state.heldOverflow = true;
    schedule();
    return;
  }
  if (ev.snapshot) {
    // A snapshot supersedes whatever was held.
    state.held = [];
    state.heldOverflow = false;
  }
  apply(ev);
  eventsSinceList++;
  schedule();
}

function onStatus(stateName, text) {
  const el = $("connection");
  el.dataset.state = stateName;
  $("connection-text").textContent = text;
}

// ---- rendering ----

let scheduled = false;
/** A user's action redraws the lists at the next frame, whatever the traffic. */
let listForced = false;
function schedule(force = false) {
  if (force) listForced = true;
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => {
    scheduled = false;
    render();
  });
}

// Under heavy traffic (thousands of calls a second) rebuilding the call list every frame
// costs more layout than a frame has: the lists then redraw at most LIST_HZ times a second,
// which a person still reads as live, and the page keeps its frame rate.
const LIST_HZ = 5;
const BUSY_EVENTS_PER_FRAME = 50;
let eventsSinceList = 0;
let lastListRender = 0;

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else if (k === "title") e.title = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== undefined && c !== null) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

const HEALTH = {
  HEALTH_SERVING: ["serving", "ok", "codicon-pass"],
  HEALTH_NOT_SERVING: ["not serving", "error", "codicon-error"],
  HEALTH_DRAINING: ["draining", "warn", "codicon-warning"],
  HEALTH_EJECTED: ["ejected", "error", "codicon-circle-slash"],
};

/** How an instance's Register stream came in: its short label and, for the tooltip, in words. */
const TRANSPORT = {
  TRANSPORT_HTTP2: ["h2c", "HTTP/2", false, "HTTP/2 without TLS (h2c)"],
  TRANSPORT_HTTP2_TLS: ["h2", "HTTP/2", true, "HTTP/2 over TLS (h2)"],
  TRANSPORT_WEBSOCKET: ["ws", "WebSocket", false, "the WebSocket fallback, without TLS (ws)"],
  TRANSPORT_WEBSOCKET_TLS: ["wss", "WebSocket", true, "the WebSocket fallback, over TLS (wss)"],
};

/**
 * The connection cell: a short label (protocol, TLS or mTLS, a key icon for credentials) and
 * the address; the tooltip says it in words with the principal the router took it for.
 */
function connectionCell(i) {
  const [code, protocol, tls, words] = TRANSPORT[i.transport] ?? ["", "", false, ""];
  const principal = i.principal ?? "";
  const mtls = principal.startsWith("certificate ");
  const credentials = principal.includes("credentials ");
  const tip = [
    words ? `Register stream over ${words}` : "transport not reported",
    principal === "anonymous" ? "principal: anonymous (no client certificate, no credentials)" : principal ? `principal: ${principal}` : undefined,
    i.address ? `from ${i.address}` : undefined,
  ]
    .filter(Boolean)
    .join("\n");
  const label = code
    ? el(
        "span",
        { class: "transport", "data-transport": code, "data-principal": principal || undefined, title: tip },
        icon(tls ? "codicon-lock" : "codicon-unlock"),
        ` ${protocol}${tls ? (mtls ? " mTLS" : " TLS") : ""}`,
        // The key is for the eye; a screen reader hears the words.
        ...(credentials ? [icon("codicon-key", "credentials"), el("span", { class: "visually-hidden" }, " with credentials")] : []),
      )
    : undefined;
  return [label, el("span", { class: "muted", title: tip }, i.address ?? "")].filter(Boolean);
}

function callStatus(call) {
  if (!call.ended) return { text: "in flight", cls: "inflight" };
  return { text: statusName(call.ended.code), cls: call.ended.code === 0 ? "ok" : "error" };
}

function matches(call) {
  const f = state.filters;
  if (f.service && call.service !== f.service) return false;
  if (f.method && !call.method.toLowerCase().includes(f.method.toLowerCase())) return false;
  if (f.instance && call.instanceId !== f.instance) return false;
  if (f.status === "inflight" && call.ended) return false;
  if (f.status === "ok" && (!call.ended || call.ended.code !== 0)) return false;
  if (f.status === "error" && (!call.ended || call.ended.code === 0)) return false;
  return inView(call, f.view);
}

function filteredCalls() {
  return [...state.calls.values()].filter(matches);
}

function renderOptions(select, values, current) {
  const want = ["", ...values];
  const have = [...select.options].map((o) => o.value);
  if (want.length === have.length && want.every((v, i) => v === have[i])) return;
  select.replaceChildren(...want.map((v) => el(optionTag(select), { value: v }, v || "all")));
  select.value = want.includes(current) ? current : "";
}

function renderFilters() {
  const services = new Set(state.services.map((s) => s.name));
  for (const i of state.instances.values()) services.add(i.service);
  for (const c of state.calls.values()) if (c.service) services.add(c.service);
  renderOptions($("filter-service"), [...services].sort(), state.filters.service);
  const instances = new Set([...state.instances.values()].map((i) => i.id));
  for (const c of state.calls.values()) if (c.instanceId) instances.add(c.instanceId);
  renderOptions($("filter-instance"), [...instances].sort(), state.filters.instance);
  const methods = new Set();
  for (const s of state.services) for (const m of s.methods ?? []) methods.add(`/${s.name}/${m}`);
  const dl = $("methods");
  if (dl.childElementCount !== methods.size) dl.replaceChildren(...[...methods].sort().map((m) => el("option", { value: m })));
}

/**
 * Instance rows are kept and their cells updated in place: under load the counts change
 * many times a second, and a button replaced between a press and its release loses the
 * click (and its keyboard focus).
 */
const instanceRows = new Map();

function setCell(td, key, build) {
  if (td.dataset.key === key) return;
  td.dataset.key = key;
  td.replaceChildren(...[build()].flat());
}

function instanceRow(i) {
  const k = instKey(i);
  let row = instanceRows.get(k);
  if (!row) {
    const cells = Array.from({ length: 9 }, (_, n) => el("td", { class: [1, 7].includes(n) ? "mono" : [4, 5, 6].includes(n) ? "num" : undefined }));
    row = { tr: el("tr", { "data-instance": i.id, "data-service": i.service }, ...cells), cells };
    instanceRows.set(k, row);
  }
  const c = row.cells;
  const [health, cls, healthIcon] = HEALTH[i.health] ?? ["unknown", "warn", "codicon-question"];
  const byOperator = i.operatorDrained || i.operatorEjected;
  setCell(c[0], i.service, () => i.service);
  setCell(c[1], i.id, () => i.id);
  const labels = Object.entries(i.labels ?? {}).map(([k2, v]) => `${k2}=${v}`);
  setCell(c[2], labels.join("\n"), () => labels.map((l) => el("span", { class: "chip" }, l)));
  setCell(c[3], `${i.health}:${byOperator}`, () =>
    el("span", { class: `badge ${cls}`, title: byOperator ? "by an operator" : undefined }, icon(healthIcon), ` ${health}` + (byOperator ? " (operator)" : "")),
  );
  setCell(c[4], `${i.weight}:${i.operatorWeight}`, () => String(i.weight || 1) + (i.operatorWeight ? "*" : ""));
  const load = i.maxConcurrentCalls ? `${i.inFlightCalls ?? 0} / ${i.maxConcurrentCalls}` : String(i.inFlightCalls ?? 0);
  setCell(c[5], load, () => load);
  setCell(c[6], String(i.streams ?? 0), () => String(i.streams ?? 0));
  setCell(c[7], `${i.address ?? ""}:${i.transport ?? ""}:${i.principal ?? ""}`, () => connectionCell(i));
  setCell(c[8], `${i.health}:${i.operatorDrained}:${i.operatorEjected}:${i.weight}`, () => operator.instanceButtons(i));
  return row.tr;
}

function renderInstances() {
  const rows = [...state.instances.values()]
    .filter((i) => !state.filters.service || i.service === state.filters.service)
    .sort((a, b) => (a.service + a.id).localeCompare(b.service + b.id));
  const tbody = $("instances").tBodies[0];
  const focusKey = tbody.contains(document.activeElement) ? document.activeElement.dataset.focusKey : undefined;
  const trs = rows.map(instanceRow);
  if (trs.length !== tbody.rows.length || trs.some((tr, n) => tbody.rows[n] !== tr)) tbody.replaceChildren(...trs);
  const live = new Set(rows.map(instKey));
  for (const k of instanceRows.keys()) if (!live.has(k)) instanceRows.delete(k);
  restoreFocus(focusKey);
  $("instances-count").textContent = String(rows.length);
  $("instances-empty").hidden = rows.length > 0;
}

// The call list is virtual: only the rows in view (and OVERSCAN more) exist; margins on the
// table stand in for the rest, so a list of thousands costs the layout of a few dozen rows.
let rowHeight = 22;
/** The call ids in list order at the last render (keyboard navigation walks these). */
let listedIds = [];
/** A row to focus once it is drawn (keyboard navigation to a row outside the view). */
let focusAfterRender;

function callRow(c, tabRow, index) {
  const st = callStatus(c);
  const m = splitMethod(c.method);
  const selected = c.id === state.selected;
  return el(
    "tr",
    {
      "data-call": c.id,
      "data-method": c.method,
      class: [selected ? "selected" : "", c.id === firstFailureId ? "first-error" : "", c.retries ? "retried" : ""].join(" ").trim() || undefined,
      "aria-selected": String(selected),
      "aria-rowindex": String(index + 2),
      tabindex: c.id === tabRow ? "0" : "-1",
      title: c.reason ? `routed: ${c.reason}` : undefined,
    },
    el("td", { class: "mono muted" }, formatClock(c.startMs)),
    el("td", { class: "mono" }, m.short),
    el("td", { class: "mono" }, c.instanceId),
    el("td", {}, el("span", { class: `badge ${st.cls}` }, st.text)),
    el("td", { class: "num" }, c.ended ? formatDuration(c.ended.durationMs) : ""),
    el("td", { class: "num" }, `${c.requests}/${c.responses}`),
  );
}

/**
 * Where the list is scrolled and how tall it is. Read before the frame writes anything: a
 * read after a write forces a layout of the page then and there, once more per frame.
 */
function measureCalls() {
  const table = $("calls");
  const scroller = table.parentElement;
  return { scrollTop: scroller.scrollTop, height: scroller.clientHeight, headerHeight: table.tHead.offsetHeight };
}
/** Rows have a fixed height (style.css); it is measured once, from the first row drawn. */
let rowMeasured = false;

function renderCalls(view = measureCalls()) {
  const calls = filteredCalls();
  const shown = arrange(calls, state.filters.view).slice(0, MAX_ROWS);
  renderFirstFailure(state.filters.view === "errors" ? firstFailure(calls) : undefined);
  listedIds = shown.map((c) => c.id);
  const table = $("calls");
  const tbody = table.tBodies[0];
  // The rows are rebuilt as calls come and go: keep keyboard focus on the row that had it.
  const focused = focusAfterRender ?? (tbody.contains(document.activeElement) ? document.activeElement?.dataset?.call : undefined);
  focusAfterRender = undefined;
  // Roving tabindex: one row is in the tab order (the selected one, else the newest); the
  // arrow keys move between rows (see wire()).
  const tabRow = listedIds.includes(focused ?? state.selected) ? (focused ?? state.selected) : listedIds[0];
  const top = Math.max(0, view.scrollTop - view.headerHeight);
  const from = Math.max(0, Math.floor(top / rowHeight) - OVERSCAN);
  const to = Math.min(shown.length, Math.ceil((top + (view.height || 600)) / rowHeight) + OVERSCAN);
  table.setAttribute("aria-rowcount", String(shown.length + 1));
  table.style.marginTop = `${from * rowHeight}px`;
  table.style.marginBottom = `${(shown.length - to) * rowHeight}px`;
  tbody.replaceChildren(...shown.slice(from, to).map((c, i) => callRow(c, tabRow, from + i)));
  if (!rowMeasured && tbody.rows[0]) {
    rowHeight = tbody.rows[0].offsetHeight || rowHeight;
    rowMeasured = true;
  }
  if (focused) tbody.querySelector(`tr[data-call="${CSS.escape(focused)}"]`)?.focus();
  $("calls-count").textContent = String(calls.length);
  $("calls-empty").hidden = calls.length > 0;
}

/** The errors view marks where the errors started: the earliest failed call listed. */
let firstFailureId;
function renderFirstFailure(first) {
  firstFailureId = first?.id;
  const note = $("first-failure");
  note.hidden = !first;
  if (!first) return;
  const key = `${first.id}`;
  if (note.dataset.call === key) return;
  note.dataset.call = key;
  const go = button({ id: "show-first-failure" }, "Show");
  go.addEventListener("click", () => selectCall(first.id, true));
  note.replaceChildren(
    el("span", { class: "badge error" }, "first failure"),
    ` ${formatClock(first.startMs)} ${splitMethod(first.method).short} on ${first.instanceId || "no instance"}: ${statusName(first.ended.code)} `,
    go,
  );
}

/** Scrolls the list so the row of `id` is in view, then draws it with focus. */
function revealCall(id) {
  const table = $("calls");
  const scroller = table.parentElement;
  const headerHeight = table.tHead.offsetHeight;
  const rowTop = headerHeight + listedIds.indexOf(id) * rowHeight;
  if (rowTop - headerHeight < scroller.scrollTop) scroller.scrollTop = rowTop - headerHeight;
  else if (rowTop + rowHeight > scroller.scrollTop + scroller.clientHeight) scroller.scrollTop = rowTop + rowHeight - scroller.clientHeight;
  focusAfterRender = id;
  renderCalls();
}

function kv(title, map) {
  const entries = Object.entries(map ?? {});
  if (entries.length === 0) return undefined;
  return el(
    "details",
    { class: "kv", open: "" },
    el("summary", {}, `${title} (${entries.length})`),
    el("dl", {}, ...entries.flatMap(([k, v]) => [el("dt", { class: "mono" }, k), el("dd", { class: "mono" }, v)])),
  );
}

let detailKey = "";
/**
 * Shows call `id` in the detail panel, drawn anew; with `reveal`, its row is scrolled into view.
 * The row is marked and the panel drawn at once, not at the next frame: under load a frame can
 * come late, and a click must never leave the panel showing the call selected before (whose
 * buttons, Replay included, would then act on the wrong call).
 */
function selectCall(id, reveal = false) {
  state.selected = id;
  detailKey = "";
  if (reveal) revealCall(id);
  for (const tr of $("calls").tBodies[0].rows) {
    const selected = tr.dataset.call === id;
    tr.classList.toggle("selected", selected);
    tr.setAttribute("aria-selected", String(selected));
  }
  renderDetail();
  schedule(true);
}

function renderDetail() {
  const panel = $("detail");
  const call = state.selected ? state.calls.get(state.selected) : undefined;
  if (!call) {
    if (detailKey !== "none") panel.replaceChildren(el("p", { class: "empty" }, "Select a call to see its timeline."));
    detailKey = "none";
    delete panel.dataset.call;
    return;
  }
  // Redraw only when the call changed (keeps open <details> and text selection stable).
  const key = `${call.id}:${call.messages.length}:${call.ended ? 1 : 0}:${call.headers ? 1 : 0}:${call.decisions.length}`;
  if (key === detailKey) return;
  detailKey = key;
  // Which call the panel shows (the list's selection may be scrolled or filtered away).
  panel.dataset.call = call.id;
  const st = callStatus(call);
  const grpcurl = grpcurlCommand(call, state.routerAddress);
  const copyBtn = button(
    { id: "copy-grpcurl", disabled: grpcurl.error ? "" : undefined, title: grpcurl.error ?? "Copy a grpcurl command that replays this call" },
    "Copy as grpcurl",
    "codicon-copy",
  );
  copyBtn.addEventListener("click", () => {
    if (!grpcurl.command) return;
    source.copy(grpcurl.command).then(
      () => flash(copyBtn, grpcurl.skipped.length ? `Copied (without ${grpcurl.skipped.join(", ")})` : "Copied"),
      () => flash(copyBtn, "Copy failed"),
    );
  });
  const timeline = el(
    "ol",
    { class: "timeline" },
    ...call.messages.map((m, i) => {
      const body = m.json
        ? el("pre", { class: "body mono" }, prettyJson(m.json) + (m.jsonTruncated ? "\n… (cut)" : ""))
        : el("p", { class: "muted body-missing" }, m.jsonError || "body not captured");
      return el(
        "li",
        { class: `msg ${m.direction}`, "data-direction": m.direction, "data-index": String(i) },
        el(
          "div",
          { class: "msg-head" },
          el(
            "span",
            { class: "arrow" },
            icon(m.direction === "request" ? "codicon-arrow-right" : "codicon-arrow-left"),
            m.direction === "request" ? " request" : " response",
          ),
          el("span", { class: "muted" }, `+${formatDuration(m.timeMs - call.startMs)}`),
          el("span", { class: "muted" }, formatBytes(m.size)),
        ),
        body,
      );
    }),
  );
  const parts = [
    el("div", { class: "detail-head" }, el("h2", { class: "mono" }, call.method), el("span", { class: `badge ${st.cls}` }, st.text), copyBtn),
    el(
      "dl",
      { class: "facts" },
      el("dt", {}, "Instance"),
      el("dd", { class: "mono" }, call.instanceId || "—"),
      el("dt", {}, "Why"),
      el("dd", {}, call.firstReason || "—"),
      ...routeFacts(call, el),
      el("dt", {}, "Kind"),
      el("dd", {}, call.kind || "—"),
      el("dt", {}, "Peer"),
      el("dd", { class: "mono" }, call.peer || "—"),
      el("dt", {}, "Started"),
      el("dd", { class: "mono" }, formatClock(call.startMs)),
      el("dt", {}, "Duration"),
      el("dd", {}, call.ended ? formatDuration(call.ended.durationMs) : "in flight"),
      ...(call.ended?.message ? [el("dt", {}, "Message"), el("dd", {}, call.ended.message)] : []),
    ),
    el("h3", {}, "Route"),
    routeTimeline(call, el),
    canReplay(call) ? replaySection(call, { el, source, onNewCall: (id) => selectWhenListed(id) }) : undefined,
    kv("Request metadata", call.metadata),
    kv("Response headers", call.headers),
    kv("Trailers", call.ended?.trailers),
    el(
      "h3",
      {},
      `Messages (${call.requests} → / ${call.responses} ←)`,
      call.messagesOmitted ? el("span", { class: "muted" }, ` · ${call.messagesOmitted} not kept`) : undefined,
    ),
    call.messages.length ? timeline : el("p", { class: "empty" }, "No messages yet."),
  ];
  panel.replaceChildren(...parts.filter((p) => p !== undefined));
}

function renderStats() {
  let inFlight = 0;
  let messages = 0;
  for (const c of state.calls.values()) {
    if (!c.ended) inFlight++;
    messages += c.requests + c.responses;
  }
  $("stats").textContent = `${state.instances.size} instances · ${inFlight} in flight · ${state.calls.size} calls · ${messages} messages`;
  $("router-address").textContent = state.routerAddress;
  const paused = $("paused-note");
  paused.hidden = !state.paused;
  paused.textContent = state.paused ? `paused · ${state.held.length}${state.heldOverflow ? "+" : ""} events held` : "";
  const dropped = $("dropped-note");
  dropped.hidden = state.dropped === 0;
  dropped.textContent = state.dropped ? `${state.dropped} events lost (resynced)` : "";
}

/** Selects a call once it is in the list (a replay's new call arrives on the event stream). */
let selectWhenSeen;
function selectWhenListed(id) {
  selectWhenSeen = id;
  schedule(true);
}

let charts;
let topology;
function render() {
  // Paused: nothing shown changes but the count of held events; rows stay as they are, so
  // they can be read and clicked.
  if (state.paused && !listForced) return renderStats();
  const listView = measureCalls();
  let reveal;
  if (selectWhenSeen && state.calls.has(selectWhenSeen)) {
    state.selected = reveal = selectWhenSeen;
    selectWhenSeen = undefined;
    detailKey = "";
    listForced = true;
  }
  const serviceNames = [...new Set([...state.services.map((s) => s.name), ...state.pausedServices])].sort();
  operator.renderServices($("service-actions"), serviceNames, state.pausedServices);
  charts ??= new ChartsView($("charts"));
  charts.render(state.stats, state.filters.service);
  topology ??= new TopologyView($("topology"));
  topology.render(state.instances.values(), state.stats, state.routerAddress, state.filters.service);
  const now = performance.now();
  const busy = eventsSinceList > BUSY_EVENTS_PER_FRAME;
  if (listForced || !busy || now - lastListRender >= 1000 / LIST_HZ) {
    listForced = false;
    eventsSinceList = 0;
    lastListRender = now;
    renderFilters();
    renderInstances();
    renderCalls(listView);
    if (reveal && listedIds.includes(reveal)) revealCall(reveal);
    renderStats();
  } else {
    schedule(); // the lists are due later; come back next frame
  }
  renderDetail();
  announcer.flush();
}

function flash(btn, text) {
  const old = btn.dataset.label;
  setButton(btn, text);
  setTimeout(() => setButton(btn, old), 1500);
}

// ---- controls ----

function wire() {
  $("calls").addEventListener("click", (e) => {
    const tr = e.target.closest("tr[data-call]");
    if (tr) selectCall(tr.dataset.call);
  });
  $("calls").addEventListener("keydown", (e) => {
    const tr = e.target.closest("tr[data-call]");
    if (!tr) return;
    const i = listedIds.indexOf(tr.dataset.call);
    const page = Math.max(1, Math.floor($("calls").parentElement.clientHeight / rowHeight) - 1);
    const go = { ArrowDown: i + 1, ArrowUp: i - 1, Home: 0, End: listedIds.length - 1, PageDown: i + page, PageUp: i - page }[e.key];
    if (go !== undefined) {
      e.preventDefault();
      const id = listedIds[Math.max(0, Math.min(listedIds.length - 1, go))];
      if (id === undefined) return;
      // Moving through the list shows each call, as in VS Code's lists.
      selectCall(id, true);
    } else if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      selectCall(tr.dataset.call);
    }
  });
  $("calls").parentElement.addEventListener("scroll", () => schedule(true), { passive: true });
  const pause = $("pause");
  pause.addEventListener("click", () => {
    state.paused = !state.paused;
    setButton(pause, state.paused ? "Resume" : "Pause", state.paused ? "codicon-debug-continue" : "codicon-debug-pause");
    pause.setAttribute("aria-pressed", String(state.paused));
    if (!state.paused) {
      const held = state.held;
      const overflow = state.heldOverflow;
      state.held = [];
      state.heldOverflow = false;
      if (overflow) source.resync();
      else for (const ev of held) apply(ev);
    }
    schedule(true);
  });
  $("clear").addEventListener("click", () => {
    state.clearedBefore = Date.now();
    for (const [id, c] of state.calls) if (c.ended) state.calls.delete(id);
    if (state.selected && !state.calls.has(state.selected)) state.selected = undefined;
    state.dropped = 0;
    schedule(true);
  });
  $("export").addEventListener("click", () => {
    const text = callsToJsonl(filteredCalls());
    source.exportFile(`grpcrouter-calls-${new Date().toISOString().replace(/[:.]/g, "-")}.jsonl`, text);
  });
  const bind = (id, key, evName) =>
    $(id).addEventListener(evName, (e) => {
      state.filters[key] = e.target.value;
      schedule(true);
    });
  bind("filter-service", "service", "change");
  bind("filter-instance", "instance", "change");
  bind("filter-status", "status", "change");
  bind("filter-view", "view", "change");
  bind("filter-method", "method", "input");
}

const announcer = new Announcer($("live-calls"), $("live-errors"));
await initHost();
wire();
const source = connect({ onEvent, onStatus });
operator = new OperatorActions({ source, el, log: $("action-log"), status: $("action-status") });
schedule();
