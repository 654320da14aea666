// Replaying a recorded call from its timeline: its requests as editable JSON (decoded by the
// router with the module's descriptors, encoded back the same way), sent to the router, which
// runs it as a new call (carrying `grpcrouter-replay-of`) that then shows in the list.
import { button } from "./host.js";

/** Calls the router can replay: unary and client-streaming (the whole stream). */
export function canReplay(call) {
  return call.kind === "unary" || call.kind === "client_streaming";
}

/** The editor's first text: the recorded request (unary) or the list of requests (client streaming). */
export function replayText(call) {
  const reqs = call.messages.filter((m) => m.direction === "request");
  const parse = (m) => {
    try {
      return JSON.parse(m.json);
    } catch {
      return {};
    }
  };
  if (call.kind === "unary") return JSON.stringify(reqs[0] ? parse(reqs[0]) : {}, null, 2);
  return JSON.stringify(reqs.map(parse), null, 2);
}

/** What the editor holds, as the request list the router takes; throws with a readable message. */
export function requestsFromText(call, text) {
  let v;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`not JSON: ${e.message}`);
  }
  if (call.kind === "unary") {
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("a unary call takes one request: a JSON object");
    return [JSON.stringify(v)];
  }
  if (!Array.isArray(v)) throw new Error("a client-streaming call takes a JSON array of requests");
  return v.map((r) => JSON.stringify(r));
}

/**
 * The last replay: the call it replays (`of`), the new call once the router answered, and what
 * its outcome says. Kept outside the section because the detail may be drawn anew while a
 * replay is in flight (new events of the call, a resync): the section drawn then shows the same
 * state, and the outcome goes to whichever section is on the page when the answer comes.
 */
let lastReplay;

function showReplay(replay, result, send) {
  result.dataset.state = replay.state;
  if (replay.newCall) result.dataset.newCall = replay.newCall;
  result.textContent = replay.text;
  if (send) send.disabled = replay.state === "busy";
}

/**
 * The replay section of a call's detail: an editor, a Replay button and the outcome. `onNewCall`
 * selects the new call once the router has answered.
 */
export function replaySection(call, { el, source, onNewCall }) {
  const missing = call.messages.filter((m) => m.direction === "request").some((m) => !m.json) || call.messagesOmitted > 0;
  const editor = el("textarea", {
    class: "replay-editor mono",
    id: "replay-editor",
    spellcheck: "false",
    rows: "8",
    "aria-label": `Requests of the replay of call ${call.id} (JSON)`,
  });
  editor.value = replayText(call);
  const send = button({ id: "replay-send" }, "Replay", "codicon-debug-rerun");
  const result = el("div", { class: "replay-result", id: "replay-result", role: "status", "aria-live": "polite", "data-of": call.id });
  if (lastReplay && (lastReplay.of === call.id || lastReplay.newCall === call.id)) showReplay(lastReplay, result, send);
  else if (missing) result.textContent = "Some request bodies were not captured: write them before replaying.";
  send.addEventListener("click", async () => {
    // A vscode-button may still dispatch a click while disabled (a replay in flight).
    if (send.disabled) return;
    let requestsJson;
    try {
      requestsJson = requestsFromText(call, editor.value);
    } catch (e) {
      result.dataset.state = "error";
      result.textContent = e.message;
      return;
    }
    const replay = { of: call.id, newCall: undefined, state: "busy", text: "replaying…" };
    lastReplay = replay;
    showReplay(replay, result, send);
    try {
      const r = await source.replay({ callId: call.id, requestsJson });
      replay.state = r.code === 0 ? "ok" : "error";
      replay.newCall = r.callId;
      replay.text = `call ${r.callId}: ${r.code === 0 ? "OK" : `code ${r.code}: ${r.message}`} (replay of call ${call.id})`;
    } catch (e) {
      replay.state = "error";
      replay.text = `replay failed: ${e.message}`;
    }
    // The section on the page now: this one, or one drawn since for the same call.
    const shown = result.isConnected ? result : document.querySelector(`#replay-result[data-of="${CSS.escape(call.id)}"]`);
    if (shown) showReplay(replay, shown, shown.closest(".replay")?.querySelector("#replay-send"));
    if (replay.newCall && replay.newCall !== "0" && lastReplay === replay) onNewCall(replay.newCall);
  });
  return el(
    "div",
    { class: "replay" },
    el(
      "details",
      { id: "replay" },
      el("summary", {}, call.kind === "unary" ? "Replay with edited request" : "Replay the whole stream with edited requests"),
      editor,
      el("div", { class: "replay-buttons" }, send),
    ),
    result,
  );
}
