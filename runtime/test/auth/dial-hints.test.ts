// What a bridge says when it cannot reach its router because only one side uses TLS (or the
// router's certificate is not trusted, or it wants a client certificate): grpc-js alone says
// "Failed to connect" or quotes OpenSSL. The hint must name the likely fix, and must not
// appear when the error does not indicate TLS (nothing listening).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import type * as grpc from "@grpc/grpc-js";
import { createBridge, createRouter } from "../../src/tunnel/index.js";
import { loadChannelCredentials, loadServerCredentials } from "../../src/auth/index.js";
import { TestTunnel, interopImpl, quietLog, waitFor } from "../tunnel/helpers.js";

const here = path.dirname(fileURLToPath(import.meta.url));

describe("a bridge that cannot reach its router says why", { timeout: 120_000 }, () => {
  let dir: string;
  const f = (name: string) => path.join(dir, name);

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-hints-"));
    execFileSync("bash", [path.join(here, "make-certs.sh"), dir]);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Lines a bridge logs against a router listening with `server` credentials (undefined: plaintext). */
  async function bridgeLines(
    server: grpc.ServerCredentials | undefined,
    client: grpc.ChannelCredentials | undefined,
    until: (lines: string[]) => boolean,
  ): Promise<string[]> {
    const router = createRouter({ services: [{ tunnel: TestTunnel }], logger: quietLog() });
    const { port } = await router.listen("127.0.0.1:0", server);
    const lines: string[] = [];
    const bridge = createBridge(TestTunnel, interopImpl("x"), {
      router: `localhost:${port}`,
      instanceId: "x",
      logger: quietLog(lines),
      backoff: { initialMs: 50, maxMs: 200 },
      ...(client ? { credentials: client } : {}),
    });
    void bridge.start().catch(() => {});
    try {
      await waitFor("the bridge to log a failure", () => until(lines), 30_000);
      return lines;
    } finally {
      await bridge.stop(0);
      await router.close(0);
    }
  }
  const lost = (lines: string[]) => lines.some((l) => /lost \(/.test(l));
  const tlsServer = (clientCa = false) =>
    loadServerCredentials({ cert: f("server.pem"), key: f("server.key"), ...(clientCa ? { clientCa: f("ca.pem") } : {}) });

  it("plaintext bridge, TLS router: the router speaks TLS", async () => {
    const lines = await bridgeLines(tlsServer(), undefined, lost);
    assert.match(
      lines.find((l) => /lost/.test(l))!,
      /lost \(UNAVAILABLE: .*Failed to connect.*\); the router speaks TLS: dial it with TLS \(BridgeOptions\.credentials.*--router-tls, --router-ca\); reconnecting in \d+ ms$/,
    );
  });

  it("TLS bridge, plaintext router: the router answered without TLS", async () => {
    const lines = await bridgeLines(undefined, loadChannelCredentials({ ca: f("ca.pem") }), lost);
    assert.match(
      lines.find((l) => /lost/.test(l))!,
      /; the router answered without TLS: it may be a plaintext router \(dial it without TLS: no credentials \/ --router-tls\); reconnecting/,
    );
  });

  it("TLS bridge that does not trust the router's CA: names the CA option", async () => {
    const lines = await bridgeLines(tlsServer(), loadChannelCredentials({ ca: f("other-ca.pem") }), lost);
    assert.match(lines.find((l) => /lost/.test(l))!, /unable to verify.*; the router's certificate is not trusted: give the CA that signed it/);
  });

  it("TLS bridge without a client certificate, or with one of another CA, mTLS router: asks for one it trusts", async () => {
    for (const creds of [
      loadChannelCredentials({ ca: f("ca.pem") }),
      loadChannelCredentials({ ca: f("ca.pem"), cert: f("other-client.pem"), key: f("other-client.key") }),
    ]) {
      const lines = await bridgeLines(tlsServer(true), creds, lost);
      assert.match(
        lines.find((l) => /lost/.test(l))!,
        /; the router requires a client certificate it trusts \(mTLS\).*--router-cert, --router-key\); reconnecting/,
      );
    }
  });

  it("no TLS hint when nothing listens, or when a plaintext port closes the connection", async () => {
    // A port that was free a moment ago: connection refused.
    const free = createServer();
    const port = await new Promise<number>((r) => free.listen(0, "127.0.0.1", () => r((free.address() as { port: number }).port)));
    await new Promise((r) => free.close(r));
    // A plaintext server that hangs up at once: "Failed to connect", but no TLS behind it.
    const hangup = createServer((s) => s.destroy());
    const hangupPort = await new Promise<number>((r) => hangup.listen(0, "127.0.0.1", () => r((hangup.address() as { port: number }).port)));
    try {
      for (const p of [port, hangupPort]) {
        const lines: string[] = [];
        const bridge = createBridge(TestTunnel, interopImpl("x"), {
          router: `127.0.0.1:${p}`,
          instanceId: "x",
          logger: quietLog(lines),
          backoff: { initialMs: 50, maxMs: 200 },
        });
        void bridge.start().catch(() => {});
        try {
          await waitFor("the bridge to log a failure", () => lines.filter((l) => /lost \(/.test(l)).length >= 2, 30_000);
        } finally {
          await bridge.stop(0);
        }
        for (const l of lines.filter((x) => /lost \(/.test(x))) assert.match(l, /\); reconnecting in \d+ ms$/, `no hint: ${l}`);
      }
    } finally {
      await new Promise((r) => hangup.close(r));
    }
  });
});
