// Live charts from the router's per-second call statistics (admin `stats` events and the
// snapshot's history): per service, requests/s with errors and p50/p99 latency; per
// instance, small multiples on the same scales so the slow or failing one stands out.
// uPlot draws (embedded, no network); this file only shapes the data.
import uPlot from "./uplot.js";

/** Seconds kept and drawn. */
export const WINDOW = 300;
/** Seconds the headline numbers (req/s, p99, errors) summarise. */
const RECENT = 10;

/** One series: a service as a whole (instanceId "") or one instance. */
function newSeries(service, instanceId) {
  return { service, instanceId, seconds: [], calls: [], errors: [], p50: [], p99: [] };
}

export class StatsModel {
  constructor() {
    /** "service\0instance" → series */
    this.series = new Map();
    this.version = 0;
  }

  key(service, instanceId) {
    return `${service}\u0000${instanceId ?? ""}`;
  }

  /** A snapshot's `stats` (StatsSeries in proto3 JSON) replaces everything. */
  reset(history) {
    this.series = new Map();
    for (const h of history ?? []) {
      const s = newSeries(h.service ?? "", h.instanceId ?? "");
      const first = Number(h.firstSecond ?? 0);
      const n = (h.calls ?? []).length;
      for (let i = 0; i < n; i++) {
        s.seconds.push(first + i);
        s.calls.push(h.calls[i] ?? 0);
        s.errors.push(h.errors?.[i] ?? 0);
        s.p50.push(h.p50Ms?.[i] ?? 0);
        s.p99.push(h.p99Ms?.[i] ?? 0);
      }
      this.series.set(this.key(s.service, s.instanceId), s);
    }
    this.version++;
  }

  /** A `stats` event (StatsTick): one second of one service's series. */
  add(tick) {
    const second = Number(tick.second ?? 0);
    const seen = new Set();
    let service = "";
    for (const p of tick.points ?? []) {
      service = p.service ?? "";
      const k = this.key(service, p.instanceId);
      seen.add(k);
      let s = this.series.get(k);
      if (!s) this.series.set(k, (s = newSeries(service, p.instanceId ?? "")));
      push(s, second, p.calls ?? 0, p.errors ?? 0, p.p50Ms ?? 0, p.p99Ms ?? 0);
    }
    // A series of this service that the router no longer reports has gone quiet for good.
    for (const [k, s] of this.series) if (s.service === service && !seen.has(k)) this.series.delete(k);
    this.version++;
  }
}

function push(s, second, calls, errors, p50, p99) {
  if (s.seconds.length && second <= s.seconds[s.seconds.length - 1]) return; // a replay
  s.seconds.push(second);
  s.calls.push(calls);
  s.errors.push(errors);
  s.p50.push(p50);
  s.p99.push(p99);
  if (s.seconds.length > WINDOW) for (const a of [s.seconds, s.calls, s.errors, s.p50, s.p99]) a.shift();
}

/**
 * The last RECENT seconds in three numbers. An instance that got no call in them (ejected,
 * drained, idle) keeps the numbers of its last busy seconds, so a failing instance that was
 * ejected still shows why; its rate says it gets nothing now.
 */
export function summary(s) {
  const n = s.seconds.length;
  let from = Math.max(0, n - RECENT);
  const rps = sumOf(s.calls, from, n) / Math.max(1, n - from);
  if (sumOf(s.calls, from, n) === 0) {
    let last = n - 1;
    while (last >= 0 && s.calls[last] === 0) last--;
    from = Math.max(0, last - RECENT + 1);
    if (last >= 0) return { rps, ...quality(s, from, last + 1) };
  }
  return { rps, ...quality(s, from, n) };
}

function sumOf(a, from, to) {
  let t = 0;
  for (let i = from; i < to; i++) t += a[i];
  return t;
}

function quality(s, from, to) {
  let calls = 0;
  let errors = 0;
  let p99 = 0;
  for (let i = from; i < to; i++) {
    calls += s.calls[i];
    errors += s.errors[i];
    if (s.calls[i] > 0) p99 = Math.max(p99, s.p99[i]);
  }
  return { p99Ms: p99, errorRate: calls ? errors / calls : 0 };
}

const fmtMs = (v) => (v == null ? "—" : v >= 1000 ? `${(v / 1000).toFixed(2)} s` : v >= 10 ? `${v.toFixed(0)} ms` : `${v.toFixed(2)} ms`);
/** Axis ticks are round numbers: "0", "250 ms", "1.5 s". */
const fmtTickMs = (v) => (v == null ? "" : v === 0 ? "0" : v >= 1000 ? `${+(v / 1000).toFixed(2)} s` : `${+v.toFixed(2)} ms`);
const fmtRate = (v) => (v >= 100 ? v.toFixed(0) : v.toFixed(1));

/** Colours from the page's CSS variables (VS Code theme or the dashboard's own). */
function colours(root) {
  const css = getComputedStyle(root);
  const get = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
  return {
    info: get("--info", "#3794ff"),
    ok: get("--ok", "#73c991"),
    error: get("--error", "#f48771"),
    warn: get("--warn", "#cca700"),
    muted: get("--muted", "#888"),
    grid: get("--border", "#444"),
  };
}

/**
 * The time axis spans at least this many seconds: a chart of its first seconds reads as
 * seconds on a clock, not stretched into fractions (or, for one point, into years).
 */
const MIN_SPAN_S = 10;
/** Tick steps of the time axis, whole seconds (uPlot's own go down to milliseconds). */
const TIME_STEPS_S = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
const pad2 = (n) => String(n).padStart(2, "0");

/**
 * The seconds drawn, and never fewer than MIN_SPAN_S of them (the newest at the right). From
 * the data: for a single point uPlot offers a day's range.
 */
function timeRange(u, min, max) {
  const xs = u.data[0];
  if (!xs?.length) return [min, max];
  const last = xs[xs.length - 1];
  return [Math.min(xs[0], last - MIN_SPAN_S), last];
}

/**
 * Tick labels as local clock times: "14:05:30", or "14:05" when the ticks are minutes apart.
 * The chart keeps the labels it drew on its element (data-x-ticks), where tests read them.
 */
function timeLabels(u, splits, _axisIdx, _space, step) {
  const labels = splits.map((s) => {
    const d = new Date(s * 1000);
    const hm = `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
    return step >= 60 ? hm : `${hm}:${pad2(d.getSeconds())}`;
  });
  u.root.dataset.xTicks = JSON.stringify(labels);
  return labels;
}

function axis(c, values) {
  return { stroke: c.muted, grid: { stroke: c.grid, width: 1 }, ticks: { stroke: c.grid, width: 1 }, size: 60, ...(values ? { values } : {}) };
}

function makeChart(container, width, height, title, seriesDefs, c) {
  return new uPlot(
    {
      width,
      height,
      title,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true, range: timeRange }, pct: { range: [0, 100] } },
      // How many seconds the chart drew (data-points), beside the labels it drew them with.
      hooks: { draw: [(u) => (u.root.dataset.points = String(u.data[0].length))] },
      axes: [
        // Labels "HH:MM:SS" need more room than uPlot's default 50 px between ticks.
        { ...axis(c, timeLabels), size: 24, space: 70, incrs: TIME_STEPS_S },
        axis(c, (_u, vals) => vals.map((v) => (v == null ? "" : seriesDefs.some((d) => d.ms) ? fmtTickMs(v) : String(v)))),
        ...(seriesDefs.some((d) => d.scale === "pct")
          ? [{ ...axis(c, (_u, vals) => vals.map((v) => `${v}%`)), scale: "pct", side: 1, size: 44, grid: { show: false } }]
          : []),
      ],
      series: [
        {},
        // uPlot's own choice of points: drawn while they are sparse (a lone second is a dot), not once they make a line.
        ...seriesDefs.map((d) => ({ label: d.label, stroke: d.stroke, width: 1.5, scale: d.scale ?? "y", spanGaps: true })),
      ],
    },
    [[], ...seriesDefs.map(() => [])],
    container,
  );
}

/**
 * Draws the model into `root` (a section of the page): per service a headline and two
 * charts, then one tile per instance. Charts are created once per series and fed new data
 * after that; redraws happen only when the model's version changes.
 */
export class ChartsView {
  constructor(root) {
    this.root = root;
    this.drawn = -1;
    this.filter = "";
    /** key → { el, charts: uPlot[], kind } */
    this.items = new Map();
  }

  render(model, filterService) {
    if (model.version === this.drawn && filterService === this.filter) return;
    this.drawn = model.version;
    this.filter = filterService;
    const c = colours(this.root);
    const services = [...model.series.values()].filter((s) => s.instanceId === "" && (!filterService || s.service === filterService));
    services.sort((a, b) => a.service.localeCompare(b.service));
    this.root.hidden = services.length === 0;
    const want = new Set();
    const width = Math.max(260, Math.floor((this.root.clientWidth || 900) / 2) - 24);
    for (const svc of services) {
      const key = `svc:${svc.service}`;
      want.add(key);
      let item = this.items.get(key);
      if (!item) {
        const el = document.createElement("div");
        el.className = "chart-service";
        el.dataset.service = svc.service;
        const head = document.createElement("h3");
        const charts = document.createElement("div");
        charts.className = "chart-row";
        const tiles = document.createElement("div");
        tiles.className = "chart-tiles";
        tiles.setAttribute("aria-label", `Instances of ${svc.service}`);
        el.append(head, charts, tiles);
        this.root.append(el);
        item = {
          el,
          head,
          tiles,
          charts: [
            makeChart(
              charts,
              width,
              140,
              "Requests/s",
              [
                { label: "calls", stroke: c.info },
                { label: "errors", stroke: c.error },
              ],
              c,
            ),
            makeChart(
              charts,
              width,
              140,
              "Latency",
              [
                { label: "p50", stroke: c.ok, ms: true },
                { label: "p99", stroke: c.warn, ms: true },
              ],
              c,
            ),
          ],
        };
        this.items.set(key, item);
      }
      const sum = summary(svc);
      item.head.textContent = `${svc.service} · ${fmtRate(sum.rps)} req/s · p99 ${fmtMs(sum.p99Ms)} · ${(sum.errorRate * 100).toFixed(1)} % errors`;
      item.charts[0].setData([svc.seconds, svc.calls, svc.errors]);
      item.charts[1].setData([svc.seconds, zeroToNull(svc.p50, svc.calls), zeroToNull(svc.p99, svc.calls)]);
      this.renderTiles(model, svc, item, want, c);
    }
    for (const [key, item] of this.items) {
      if (want.has(key)) continue;
      for (const ch of item.charts) ch.destroy();
      item.el.remove();
      this.items.delete(key);
    }
  }

  renderTiles(model, svc, parent, want, c) {
    const instances = [...model.series.values()].filter((s) => s.service === svc.service && s.instanceId !== "");
    instances.sort((a, b) => a.instanceId.localeCompare(b.instanceId));
    const sums = instances.map(summary);
    // "Stands out": errors, or a p99 well above the instances' median.
    const p99s = sums
      .map((s) => s.p99Ms)
      .filter((v) => v > 0)
      .sort((a, b) => a - b);
    const median = p99s.length ? p99s[Math.floor((p99s.length - 1) / 2)] : 0;
    instances.forEach((s, i) => {
      const key = `inst:${s.service}\u0000${s.instanceId}`;
      want.add(key);
      let item = this.items.get(key);
      if (!item) {
        const el = document.createElement("figure");
        el.className = "chart-tile";
        el.dataset.instance = s.instanceId;
        el.dataset.service = s.service;
        const cap = document.createElement("figcaption");
        el.append(cap);
        parent.tiles.append(el);
        item = {
          el,
          cap,
          charts: [
            makeChart(
              el,
              240,
              90,
              "",
              [
                { label: "p99", stroke: c.warn, ms: true },
                { label: "errors %", stroke: c.error, scale: "pct" },
              ],
              c,
            ),
          ],
        };
        this.items.set(key, item);
      }
      const sum = sums[i];
      const slow = median > 0 && sum.p99Ms > 2 * median && sum.p99Ms > 1;
      const failing = sum.errorRate >= 0.05;
      item.el.classList.toggle("outlier", slow || failing);
      item.el.dataset.rps = sum.rps.toFixed(2);
      item.el.dataset.p99Ms = sum.p99Ms.toFixed(3);
      item.el.dataset.errorRate = sum.errorRate.toFixed(4);
      item.el.title = slow ? "p99 more than twice the median of the instances" : failing ? "5 % or more of its calls fail" : "";
      item.cap.textContent = `${s.instanceId} · ${fmtRate(sum.rps)}/s · p99 ${fmtMs(sum.p99Ms)} · ${(sum.errorRate * 100).toFixed(0)} % err`;
      const errPct = s.errors.map((e, j) => (s.calls[j] ? (100 * e) / s.calls[j] : null));
      item.charts[0].setData([s.seconds, zeroToNull(s.p99, s.calls), errPct]);
    });
  }
}

/** A latency of a second with no call is no measurement: leave a gap, not a zero. */
function zeroToNull(values, calls) {
  return values.map((v, i) => (calls[i] ? v : null));
}
