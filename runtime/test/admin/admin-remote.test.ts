// Who may act through the Admin service, over a real network path: in a network namespace
// the test makes (so 10.77.0.1 is a local address that is not loopback), a caller from
// 10.77.0.1 without a client certificate may read the snapshot but is refused every action;
// the same router acts for a loopback caller, and for a remote caller with a verified
// client certificate (mTLS).
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));

/** How to enter a new network namespace here: as root, through an unprivileged user namespace, or through sudo. */
function namespaceCommand(): string[] {
  const works = (cmd: string[]) => spawnSync(cmd[0]!, [...cmd.slice(1), "true"], { stdio: "ignore" }).status === 0;
  const candidates = [
    ...(process.getuid?.() === 0 ? [["unshare", "--net"]] : []),
    ["unshare", "--user", "--map-root-user", "--net"],
    ["sudo", "-n", "unshare", "--net"],
  ];
  const found = candidates.find(works);
  if (!found)
    throw new Error("this test needs a network namespace of its own: run as root, allow unprivileged user namespaces, or give passwordless sudo for unshare");
  return found;
}

test("an Admin action from a non-loopback address without mTLS is refused; loopback and mTLS callers may act", { timeout: 120_000 }, () => {
  const certs = mkdtempSync(path.join(tmpdir(), "grpcrouter-admin-certs-"));
  try {
    execFileSync("bash", [path.join(here, "..", "auth", "make-certs.sh"), certs]);
    const ns = namespaceCommand();
    const script = [
      "set -e",
      "ip link set lo up",
      // An address of this namespace only, not loopback: a caller dialling it comes from it.
      "ip addr add 10.77.0.1/32 dev lo",
      `exec "${process.execPath}" --conditions=@grpcrouter/source --import tsx "${path.join(here, "fixtures", "admin-remote.ts")}" "${certs}"`,
    ].join("\n");
    const out = execFileSync(ns[0]!, [...ns.slice(1), "sh", "-c", script], { encoding: "utf8", timeout: 100_000, cwd: path.join(here, "..", "..") });
    const r = JSON.parse(out.trim().split("\n").at(-1)!);
    assert.equal(r.remotePlain.snapshot, "ok", "--public-admin: a remote caller may watch");
    assert.equal(r.remotePlain.act.code, 7, `PERMISSION_DENIED for a remote caller without a certificate: ${JSON.stringify(r.remotePlain.act)}`);
    assert.match(
      r.remotePlain.act.details,
      /Admin actions are allowed only from this machine \(loopback\) or with a verified client certificate \(mTLS: --tls-client-ca\); 10\.77\.0\.1:\d+ has neither/,
    );
    assert.equal(r.localPlain.act.code, 0, JSON.stringify(r.localPlain));
    assert.match(r.localPlain.act.details, /paused ops\.v1\.Store/);
    assert.equal(r.remoteMtls.act.code, 0, JSON.stringify(r.remoteMtls));
    // The audit log names who acted: the loopback address, then the certificate's name.
    const pauses = r.audit.filter((e: { action: string }) => e.action === "pause");
    assert.equal(pauses.length, 2, "the refused action changed nothing and was not recorded as done");
    assert.match(pauses[0].principal, /^127\.0\.0\.1:\d+$/);
    assert.match(pauses[1].principal, /^instance-a \(10\.77\.0\.1:\d+\)$/);
  } finally {
    rmSync(certs, { recursive: true, force: true });
  }
});
