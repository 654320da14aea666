// The topology of one router as a picture: clients → router → each instance of each
// service, with live call rates on the edges (from the per-second statistics) and the
// instance's state on its node (serving, not serving, draining, ejected). Plain SVG.
import { summary } from "./charts.js";

const SVG = "http://www.w3.org/2000/svg";
const ROW = 34;
const NODE_H = 24;

const STATE = {
  HEALTH_SERVING: "serving",
  HEALTH_NOT_SERVING: "not-serving",
  HEALTH_DRAINING: "draining",
  HEALTH_EJECTED: "ejected",
};

function svg(tag, attrs = {}, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

const rate = (v) => (v >= 100 ? `${v.toFixed(0)}/s` : `${v.toFixed(1)}/s`);

/**
 * Draws `instances` (Admin Instance, proto3 JSON) and the rates in `stats` (StatsModel)
 * into `root`. Redraws only when something it shows changed.
 */
export class TopologyView {
  constructor(root) {
    this.root = root;
    this.key = "";
  }

  render(instances, stats, routerAddress, filterService) {
    const list = [...instances].filter((i) => !filterService || i.service === filterService).sort((a, b) => (a.service + a.id).localeCompare(b.service + b.id));
    const rateOf = (service, id) => {
      const s = stats.series.get(stats.key(service, id));
      return s ? summary(s).rps : 0;
    };
    const services = [...new Set(list.map((i) => i.service))];
    const clientRate = services.reduce((t, s) => t + rateOf(s, ""), 0);
    const key = JSON.stringify([routerAddress, clientRate.toFixed(1), list.map((i) => [i.service, i.id, i.health, rateOf(i.service, i.id).toFixed(1)])]);
    if (key === this.key) return;
    this.key = key;
    this.root.hidden = list.length === 0;
    if (list.length === 0) return this.root.replaceChildren();

    const width = 720;
    const height = Math.max(3, list.length) * ROW + 16;
    const routerY = height / 2;
    const xs = { client: 10, router: 260, instance: 480 };
    const max = Math.max(1, ...list.map((i) => rateOf(i.service, i.id)), clientRate);
    const thickness = (r) => 1 + 7 * Math.sqrt(r / max);
    const pic = svg("svg", {
      viewBox: `0 0 ${width} ${height}`,
      width,
      height,
      role: "img",
      "aria-label": `Topology: clients, router${routerAddress ? " " + routerAddress : ""}, ${list.length} instances`,
    });

    // clients → router
    pic.append(
      svg("line", {
        class: "topo-edge",
        x1: xs.client + 110,
        y1: routerY,
        x2: xs.router,
        y2: routerY,
        "stroke-width": thickness(clientRate),
        "data-rps": clientRate.toFixed(2),
      }),
      svg("text", { class: "topo-rate", x: (xs.client + 110 + xs.router) / 2, y: routerY - 6, "text-anchor": "middle" }, rate(clientRate)),
      node(xs.client, routerY, 110, "clients", "topo-clients"),
      node(xs.router, routerY, 150, routerAddress ? `router ${routerAddress}` : "router", "topo-router"),
    );
    list.forEach((inst, n) => {
      const y = 8 + n * ROW + NODE_H / 2;
      const r = rateOf(inst.service, inst.id);
      const state = STATE[inst.health] ?? "unknown";
      const g = svg("g", {
        class: `topo-instance ${state}`,
        "data-instance": inst.id,
        "data-service": inst.service,
        "data-health": state,
        "data-rps": r.toFixed(2),
      });
      g.append(
        svg("line", {
          class: "topo-edge",
          x1: xs.router + 150,
          y1: routerY,
          x2: xs.instance,
          y2: y,
          "stroke-width": state === "serving" || r > 0 ? thickness(r) : 1,
        }),
        svg("text", { class: "topo-rate", x: xs.instance - 8, y: y - 4, "text-anchor": "end" }, rate(r)),
        node(xs.instance, y, 230, `${inst.id}${state === "serving" ? "" : ` (${state.replace("-", " ")})`}`, "topo-node-instance"),
      );
      const title = svg("title", {}, `${inst.service} · ${inst.id} · ${state} · ${rate(r)}`);
      g.append(title);
      pic.append(g);
    });
    this.root.replaceChildren(pic);
  }
}

function node(x, y, w, label, cls) {
  const g = svg("g", { class: `topo-node ${cls}` });
  g.append(
    svg("rect", { x, y: y - NODE_H / 2, width: w, height: NODE_H, rx: 4 }),
    svg("text", { x: x + 8, y: y + 4 }, label.length > 34 ? label.slice(0, 33) + "…" : label),
  );
  return g;
}
