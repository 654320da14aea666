// Operator actions from the page: drain/undrain, eject/restore and re-weight an instance,
// pause/resume a service. Each is a button (keyboard reachable; drain, eject and pause ask
// for confirmation in a modal dialog that Escape cancels), sent to the router through the
// page's source (the dashboard's POST /action, or the VS Code host's Admin client). Every
// viewer sees every action live in the actions log, from the `action` events.
import { formatClock, tsMs } from "./format.js";
import { button } from "./host.js";

const DESTRUCTIVE = {
  drain: (t) => `Drain ${t}? It takes no new calls; calls in flight finish.`,
  eject: (t) => `Eject ${t}? It takes no calls until restored.`,
  pause: (t) => `Pause ${t}? New calls are refused UNAVAILABLE until it is resumed.`,
};

const LABELS = { drain: "Drain", undrain: "Undrain", eject: "Eject", restore: "Restore", setWeight: "Weight…", pause: "Pause", resume: "Resume" };

const ACTION_NAMES = {
  ACTION_KIND_DRAIN: "drain",
  ACTION_KIND_UNDRAIN: "undrain",
  ACTION_KIND_EJECT: "eject",
  ACTION_KIND_RESTORE: "restore",
  ACTION_KIND_SET_WEIGHT: "set weight",
  ACTION_KIND_PAUSE: "pause",
  ACTION_KIND_RESUME: "resume",
};

/** Most recent actions kept in the log. */
const LOG_ROWS = 50;

export class OperatorActions {
  /**
   * @param {{ source: { act(request: object): Promise<object> }, el: Function, log: HTMLElement, status: HTMLElement }} deps
   */
  constructor(deps) {
    this.deps = deps;
    this.dialog = this.buildDialog();
    document.addEventListener("click", (e) => {
      // A plain <button> in a browser, a vscode-button in the VS Code panel (host.js).
      const b = e.target.closest?.("button[data-action], vscode-button[data-action]");
      if (b && !b.disabled) void this.run(b.dataset.action, b.dataset.service, b.dataset.instance ?? "", b.dataset.focusKey, b.dataset.weight);
    });
  }

  /** The buttons of one instance (Admin Instance, proto3 JSON). */
  instanceButtons(i) {
    const { el } = this.deps;
    const ejected = i.health === "HEALTH_EJECTED";
    const kinds = [i.operatorDrained ? "undrain" : "drain", ejected || i.operatorEjected ? "restore" : "eject", "setWeight"];
    return el(
      "span",
      { class: "op-buttons" },
      ...kinds.map((kind) =>
        button(
          {
            class: `op${DESTRUCTIVE[kind] ? " destructive" : ""}`,
            "data-action": kind,
            "data-service": i.service,
            "data-instance": i.id,
            "data-weight": String(i.weight ?? 1),
            "data-focus-key": `${kind}:${i.service}:${i.id}`,
            title: `${LABELS[kind].replace("…", "")} instance ${i.id}`,
          },
          LABELS[kind],
        ),
      ),
    );
  }

  /** Pause/Resume of each service, redrawn only when one changes. */
  renderServices(root, services, pausedSet) {
    const key = services.map((s) => `${s}:${pausedSet.has(s)}`).join("|");
    if (key === this.servicesKey) return;
    this.servicesKey = key;
    const focused = document.activeElement?.dataset?.focusKey;
    const { el } = this.deps;
    root.replaceChildren(
      ...services.map((s) => {
        const paused = pausedSet.has(s);
        const kind = paused ? "resume" : "pause";
        return el(
          "span",
          { class: `service-op${paused ? " paused" : ""}`, "data-service": s, "data-paused": String(paused) },
          el("span", { class: "mono" }, s),
          paused ? el("span", { class: "badge error" }, "paused") : undefined,
          button(
            {
              class: `op${DESTRUCTIVE[kind] ? " destructive" : ""}`,
              "data-action": kind,
              "data-service": s,
              "data-focus-key": `${kind}:${s}`,
              title: `${LABELS[kind]} ${s}`,
            },
            LABELS[kind],
          ),
        );
      }),
    );
    if (focused) restoreFocus(focused);
  }

  /** A snapshot's recent actions (oldest first) replace the log. */
  resetLog(actions) {
    this.deps.log.replaceChildren();
    this.deps.log.hidden = true;
    for (const a of actions) this.logAction(a, tsMs(a.time));
  }

  /** An `action` event: a line in the log every viewer sees. */
  logAction(action, timeMs) {
    const { el, log } = this.deps;
    const kind = ACTION_NAMES[action.kind] ?? "action";
    const li = el(
      "li",
      { "data-kind": kind, "data-service": action.service ?? "", "data-instance": action.instanceId ?? "" },
      el("span", { class: "mono muted" }, formatClock(timeMs)),
      " ",
      el("strong", {}, action.actor ?? ""),
      ": ",
      action.summary ?? kind,
      action.note ? el("span", { class: "muted" }, ` — ${action.note}`) : undefined,
    );
    log.prepend(li);
    while (log.childElementCount > LOG_ROWS) log.lastElementChild.remove();
    log.hidden = false;
  }

  async run(kind, service, instanceId, focusKey, weightNow) {
    const target = instanceId ? `instance ${instanceId} of ${service}` : service;
    let weight;
    let note = "";
    if (kind === "setWeight") {
      const answer = await this.ask(`New weight of ${target}`, { weight: weightNow ?? "1", confirm: "Set weight" });
      if (!answer) return restoreFocus(focusKey);
      weight = Number(answer.weight);
      note = answer.note;
    } else if (DESTRUCTIVE[kind]) {
      const answer = await this.ask(DESTRUCTIVE[kind](target), { confirm: LABELS[kind] });
      if (!answer) return restoreFocus(focusKey);
      note = answer.note;
    }
    const { status } = this.deps;
    status.dataset.state = "busy";
    status.textContent = `${LABELS[kind].replace("…", "")} ${target}…`;
    try {
      const r = await this.deps.source.act({ kind, service, instanceId, ...(weight !== undefined ? { weight } : {}), ...(note ? { note } : {}) });
      status.dataset.state = "ok";
      status.textContent = r.summary ?? "done";
    } catch (e) {
      status.dataset.state = "error";
      status.textContent = `${LABELS[kind].replace("…", "")} failed: ${e.message}`;
    }
    restoreFocus(focusKey);
  }

  /** A modal question; resolves with { weight, note } on confirm, undefined on cancel or Escape. */
  ask(question, { weight, confirm }) {
    const d = this.dialog;
    d.querySelector(".op-question").textContent = question;
    const w = d.querySelector("input[name=weight]");
    // Only the weight question has a weight: a hidden required field would block the form.
    w.closest("label").hidden = weight === undefined;
    w.disabled = weight === undefined;
    w.value = weight ?? "";
    d.querySelector("input[name=note]").value = "";
    d.querySelector("button[value=confirm]").textContent = confirm;
    d.returnValue = "";
    d.showModal();
    (weight === undefined ? d.querySelector("button[value=cancel]") : w).focus();
    return new Promise((resolve) => {
      d.addEventListener(
        "close",
        () => resolve(d.returnValue === "confirm" ? { weight: w.value, note: d.querySelector("input[name=note]").value.trim() } : undefined),
        { once: true },
      );
    });
  }

  buildDialog() {
    const { el } = this.deps;
    const form = el(
      "form",
      { method: "dialog" },
      el("p", { class: "op-question", id: "op-question" }),
      el("label", {}, "Weight ", el("input", { name: "weight", type: "number", min: "1", max: "10000", step: "1", required: "" })),
      el("label", {}, "Note for the audit log ", el("input", { name: "note", type: "text", maxlength: "500", placeholder: "optional" })),
      el(
        "div",
        { class: "op-dialog-buttons" },
        el("button", { type: "submit", value: "cancel", formnovalidate: "" }, "Cancel"),
        el("button", { type: "submit", value: "confirm", class: "destructive" }, "Confirm"),
      ),
    );
    const d = el("dialog", { id: "op-dialog", "aria-labelledby": "op-question" }, form);
    document.body.append(d);
    return d;
  }
}

/** Buttons are redrawn as the lists refresh: focus goes back to the one with the same key. */
export function restoreFocus(key) {
  if (!key) return;
  const b = document.querySelector(`[data-focus-key="${CSS.escape(key)}"]`);
  if (b && b !== document.activeElement) b.focus();
}
