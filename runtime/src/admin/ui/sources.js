// Where the dashboard's events come from, and where its exports go. The same page runs in
// two places:
//  - the browser, served by the router (`startDashboard`): events arrive over Server-Sent
//    Events from `./events`; EventSource reconnects by itself and the server starts every
//    connection with a snapshot, so a reconnect is a resync;
//  - a VS Code webview (`dashboardWebviewHtml`): the extension host watches the router's
//    Admin service and forwards each admin Event (proto3 JSON) to the page:
//      host → page  { type: "event", event }            one admin Event
//      host → page  { type: "events", events }          several, in order (one message is
//                                                        cheaper than many under load)
//      host → page  { type: "status", state, text }     "live" | "connecting" | "down"
//      page → host  { type: "ready" }                   (re)loaded: send a snapshot, then events
//      page → host  { type: "export", fileName, text }  save the JSON Lines export
//      page → host  { type: "copy", text }              put text on the clipboard
//      page → host  { type: "resync" }                  events were lost: send a new snapshot
//      page → host  { type: "act", id, request }        an operator action (Admin Act):
//                   request { kind: "drain"|"undrain"|"eject"|"restore"|"setWeight"|"pause"|"resume",
//                             service, instanceId?, weight?, note? }
//      page → host  { type: "replay", id, request }     Admin Replay: request { callId, requestsJson }
//      host → page  { type: "reply", id, ok, result }   the outcome ({ summary } of Act, or the
//                   ReplayResult as proto3 JSON); with ok false, { error } says why

/* global acquireVsCodeApi, EventSource */

/**
 * @param {{ onEvent(ev: object): void, onStatus(state: string, text: string): void }} sink
 * @returns {{ kind: string, exportFile(name: string, text: string): void, copy(text: string): Promise<void>, resync(): void, act(request: object): Promise<object>, replay(request: object): Promise<object> }}
 */
export function connect(sink) {
  if (typeof acquireVsCodeApi === "function") return connectWebview(sink, acquireVsCodeApi());
  return connectSse(sink);
}

function connectWebview(sink, vscode) {
  const pending = new Map();
  let nextId = 1;
  // A host that does not know the message never answers: say so instead of waiting forever.
  const ask = (type, request) =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error("VS Code did not answer (this version of the extension may not support it)"));
      }, 60_000);
      pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      vscode.postMessage({ type, id, request });
    });
  window.addEventListener("message", (e) => {
    const msg = e.data;
    if (!msg || typeof msg !== "object") return;
    if (msg.type === "event") sink.onEvent(msg.event);
    else if (msg.type === "events" && Array.isArray(msg.events)) for (const ev of msg.events) sink.onEvent(ev);
    else if (msg.type === "status") sink.onStatus(msg.state, msg.text ?? msg.state);
    else if (msg.type === "reply" && pending.has(msg.id)) {
      const p = pending.get(msg.id);
      pending.delete(msg.id);
      if (msg.ok) p.resolve(msg.result ?? {});
      else p.reject(new Error(msg.error ?? "failed"));
    }
  });
  sink.onStatus("connecting", "waiting for the router…");
  vscode.postMessage({ type: "ready" });
  return {
    kind: "webview",
    exportFile: (fileName, text) => vscode.postMessage({ type: "export", fileName, text }),
    copy: async (text) => vscode.postMessage({ type: "copy", text }),
    resync: () => vscode.postMessage({ type: "resync" }),
    act: (request) => ask("act", request),
    replay: (request) => ask("replay", request),
  };
}

function connectSse(sink) {
  let source;
  const open = () => {
    source?.close();
    sink.onStatus("connecting", "connecting…");
    // Batched: each message is an array of events (dashboard.ts), a few a second under load.
    source = new EventSource("./events?batch=1");
    source.onopen = () => sink.onStatus("live", "live");
    source.onerror = () => sink.onStatus(source.readyState === EventSource.CLOSED ? "down" : "connecting", "reconnecting…");
    source.onmessage = (m) => {
      let data;
      try {
        data = JSON.parse(m.data);
      } catch {
        return;
      }
      if (Array.isArray(data)) for (const ev of data) sink.onEvent(ev);
      else sink.onEvent(data);
    };
  };
  open();
  return {
    kind: "browser",
    exportFile(fileName, text) {
      const url = URL.createObjectURL(new Blob([text], { type: "application/x-ndjson" }));
      const a = document.createElement("a");
      a.href = url;
      a.download = fileName;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    },
    copy: (text) => navigator.clipboard.writeText(text),
    // A new connection starts with a fresh snapshot.
    resync: open,
    act: (request) => post("./action", request),
    replay: (request) => post("./replay", request),
  };
}

/** POSTs JSON to the dashboard; resolves with its JSON answer, rejects with its error. */
async function post(url, body) {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  let answer;
  try {
    answer = await res.json();
  } catch {
    answer = {};
  }
  if (!res.ok) throw new Error(answer.error ?? `HTTP ${res.status}`);
  return answer;
}
