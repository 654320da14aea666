// Where the page runs, and the controls that fit there. In a VS Code webview the buttons,
// dropdowns and count badges are VS Code Elements (@vscode-elements/elements, bundled as
// ./elements.js and loaded only there), so the panel looks, focuses and themes like the
// rest of VS Code. In a browser they stay plain HTML styled by style.css: Elements take
// their colours from VS Code's theme variables, which a browser does not have. Codicons
// (./codicons.css, a cut of @vscode/codicons) show in both. Code that builds controls asks
// this module (button, setButton, optionTag) and works with either kind: both fire "click",
// "change" and "input" and have `value`, `disabled` and `options`.
/* global acquireVsCodeApi */

export const inVsCode = typeof acquireVsCodeApi === "function";
/** Whether the controls are VS Code Elements (set by initHost). */
let elements = false;

/** A codicon (`name` is its class, e.g. "codicon-copy"), hidden from screen readers. */
export function icon(name, extraClass = "") {
  const span = document.createElement("span");
  span.className = `codicon ${name}${extraClass ? ` ${extraClass}` : ""}`;
  span.setAttribute("aria-hidden", "true");
  return span;
}

/** Sets a button's label and codicon, on a vscode-button or a plain button. */
export function setButton(button, label, iconName = button.dataset.icon) {
  button.dataset.label = label;
  if (iconName) button.dataset.icon = iconName;
  if (button.localName === "vscode-button") {
    if (iconName) button.setAttribute("icon", iconName.replace(/^codicon-/, ""));
    button.textContent = label;
  } else {
    button.replaceChildren(...(iconName ? [icon(iconName), document.createTextNode(" ")] : []), label);
  }
}

/** A new button for this host; `attrs` as for setAttribute (id, title, disabled, …). */
export function button(attrs, label, iconName) {
  const b = document.createElement(elements ? "vscode-button" : "button");
  if (!elements) b.type = "button";
  else b.setAttribute("secondary", "");
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== false) b.setAttribute(k, v);
  setButton(b, label, iconName);
  return b;
}

/** The tag of an option in `select` (a <select> or a vscode-single-select). */
export function optionTag(select) {
  return select.localName === "vscode-single-select" ? "vscode-option" : "option";
}

/**
 * Loads VS Code Elements in a webview and turns the page's static controls into them:
 * buttons with a `data-icon`, <select>s and `.count` badges. Runs once, before the page
 * wires its listeners, so those land on the final elements.
 */
export async function initHost() {
  if (inVsCode) {
    try {
      await import("./elements.js");
      elements = true;
    } catch (e) {
      // Plain controls still work: a page without Elements beats no page.
      console.error(`grpcrouter: VS Code Elements did not load (${e}); using plain controls`);
    }
  }
  document.documentElement.dataset.host = elements ? "vscode" : "browser";
  if (elements) {
    for (const b of document.querySelectorAll("button[data-icon]")) b.replaceWith(upgradeButton(b));
    for (const s of document.querySelectorAll("select")) s.replaceWith(upgradeSelect(s));
    for (const c of document.querySelectorAll("span.count")) c.replaceWith(upgradeCount(c));
  }
  for (const b of document.querySelectorAll("[data-icon]")) setButton(b, b.dataset.label ?? b.textContent.trim());
}

function copyAttributes(from, to, skip = []) {
  for (const a of from.attributes) if (!skip.includes(a.name)) to.setAttribute(a.name, a.value);
}

function upgradeButton(b) {
  const v = document.createElement("vscode-button");
  copyAttributes(b, v, ["type"]);
  v.setAttribute("secondary", "");
  v.dataset.label = b.textContent.trim();
  return v;
}

function upgradeSelect(s) {
  const v = document.createElement("vscode-single-select");
  copyAttributes(s, v);
  // Its own accessible name: a custom element is not named by the <label> around it.
  const label = s.closest("label")?.firstChild?.textContent?.trim();
  if (label) v.setAttribute("label", label);
  for (const o of s.options) {
    const opt = document.createElement("vscode-option");
    opt.setAttribute("value", o.value);
    opt.textContent = o.textContent;
    v.append(opt);
  }
  return v;
}

function upgradeCount(c) {
  const v = document.createElement("vscode-badge");
  copyAttributes(c, v);
  v.setAttribute("variant", "counter");
  return v;
}
