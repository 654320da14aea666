// The dashboard answers only requests addressed to it by a name it expects. A web page on
// another site could otherwise point a name it controls at 127.0.0.1 (DNS rebinding) and
// read /snapshot.json — call metadata and bodies — as "same origin": the browser sends that
// page's name as the Host. A prefix test ("starts with 127.") is not enough
// (127.0.0.1.evil.example), so Host must be exactly one of the loopback names with the
// dashboard's port, or a name the operator listed; an Origin, when the browser sends one,
// must be http:// + one of those.

/** The Host values a dashboard on `port` accepts: loopback names with the port, plus `extra` (host[:port]). */
export function expectedHosts(port: number, boundHost: string, extra: readonly string[] = []): Set<string> {
  const hosts = new Set([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]);
  // A specific non-wildcard address the dashboard was bound to is a name it is reached by.
  if (boundHost !== "0.0.0.0" && boundHost !== "::" && boundHost !== "") {
    hosts.add(`${boundHost.includes(":") && !boundHost.startsWith("[") ? `[${boundHost}]` : boundHost}:${port}`.toLowerCase());
  }
  for (const h of extra) hosts.add((/:\d+$/.test(h) && !/^[^[]*:[^\]]*:/.test(h) ? h : `${h}:${port}`).toLowerCase());
  return hosts;
}

/** Why a request is refused (its Host or Origin is not the dashboard's), or undefined. */
export function hostRefusal(headers: { host?: string | undefined; origin?: string | string[] | undefined }, allowed: ReadonlySet<string>): string | undefined {
  const host = (headers.host ?? "").toLowerCase();
  if (!allowed.has(host)) return `the dashboard only answers to Host ${[...allowed].join(", ")} (got ${JSON.stringify(host)})`;
  const origin = headers.origin;
  if (origin !== undefined) {
    const o = (Array.isArray(origin) ? (origin[0] ?? "") : origin).toLowerCase();
    if (o === "null" || !o.startsWith("http://") || !allowed.has(o.slice("http://".length))) return `requests from origin ${JSON.stringify(o)} are not allowed`;
  }
  return undefined;
}
