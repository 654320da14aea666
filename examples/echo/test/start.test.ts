// The README's first command: `npm start` generates the example and runs a router with a
// bridged instance, calling it once in each of the four call kinds. `--once` exits after.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

test("npm start makes one call of each kind through the router and exits cleanly with --once", () => {
  const r = spawnSync(process.execPath, ["scripts/start.mjs", "--once", "--port", "0"], {
    cwd: root,
    encoding: "utf8",
    timeout: 120_000,
  });
  assert.equal(r.status, 0, `exit ${r.status}\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /router\s+listening on 127\.0\.0\.1:\d+/);
  assert.match(r.stdout, /dashboard http:\/\/127\.0\.0\.1:\d+\//);
  assert.match(r.stdout, /unary\s+Say\("hello"\)\s+→ "hello" from echo-1/);
  assert.match(r.stdout, /server\s+Count\("tick", 3\)\s+→ tick#1, tick#2, tick#3/);
  assert.match(r.stdout, /client\s+Collect\(3 messages\)\s+→ "through the firewall" \(3 messages\)/);
  assert.match(r.stdout, /bidi\s+Chat\("ping", "pong"\)\s+→ "ping" from echo-1, "pong" from echo-1/);
});

test("npm start names the port when it is taken", async () => {
  const net = await import("node:net");
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
  const port = (blocker.address() as import("node:net").AddressInfo).port;
  try {
    const r = spawnSync(process.execPath, ["scripts/start.mjs", "--once", "--port", String(port)], {
      cwd: root,
      encoding: "utf8",
      timeout: 120_000,
    });
    assert.equal(r.status, 1, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}`));
  } finally {
    blocker.close();
  }
});
