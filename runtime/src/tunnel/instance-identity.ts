// Who owns an instance id. Without this, any holder of a service's token could register
// under ANOTHER instance's id: the router would take it as one more stream of that instance
// (overwriting its labels) and send it about half of that instance's calls, metadata and
// bodies included. So an id belongs to the principal that registered it first, for as long
// as any stream of it is registered; a Hello for that id from another principal is refused
// (PERMISSION_DENIED). The same principal may always come back under its id (a restart, a
// reconnect after a network change, a bridge's extra streams): that never reads as "in use".
//
// A principal is what the router knows of the instance's identity: its client certificate's
// names (mTLS) and/or a digest of its credentials (a token). Instances that present neither
// are all "anonymous" to each other: without authentication there is no identity to protect
// (SECURITY.md says so). To reserve ids even while their owner is away, bind them in the
// token file (`instances=`) or to certificate names (certificateAuthorizer).
import { createHash } from "node:crypto";
import type { HelloInfo } from "./router/router-context.js";

export const ANONYMOUS_PRINCIPAL = "anonymous";

/**
 * The principal of a Hello, as a string that is safe to log: certificate names as they are,
 * credentials only as a short SHA-256 digest (never the secret).
 */
export function principalOf(hello: Pick<HelloInfo, "credentials" | "certificate">): string {
  const parts: string[] = [];
  const cert = hello.certificate;
  if (cert) {
    const names = [...(cert.commonName !== undefined ? [`CN=${cert.commonName}`] : []), ...cert.subjectAltNames];
    // A certificate without names is known by its key's fingerprint alone.
    parts.push(`certificate ${names.length > 0 ? names.join(",") : `SHA-256 ${cert.fingerprint256}`}`);
  }
  const keys = Object.keys(hello.credentials)
    .filter((k) => hello.credentials[k] !== "")
    .sort();
  if (keys.length > 0) {
    const canonical = JSON.stringify(keys.map((k) => [k, hello.credentials[k]]));
    parts.push(`credentials sha256:${createHash("sha256").update(canonical, "utf8").digest("hex").slice(0, 16)}`);
  }
  return parts.length > 0 ? parts.join(" + ") : ANONYMOUS_PRINCIPAL;
}

interface Claim {
  principal: string;
  /** How many Register streams hold the id (`keyOf` knows which: no Set per id). */
  holders: number;
}

/** The owners of the instance ids of a router's services. */
export class InstanceClaims {
  private readonly claims = new Map<string, Claim>();
  private readonly keyOf = new Map<object, string>();

  /**
   * `holder` (a Register stream) wants to register `instanceId` of `service` as `principal`:
   * undefined when it may (the id was free, or is held by the same principal), else the reason.
   */
  claim(service: string, instanceId: string, principal: string, holder: object): string | undefined {
    const key = `${service}\u0000${instanceId}`;
    const claim = this.claims.get(key);
    if (this.keyOf.has(holder)) return undefined; // claimed already
    if (claim && claim.holders > 0 && claim.principal !== principal) {
      // Name the id, never the other principal's identity (the impostor learns nothing).
      return `instance id ${JSON.stringify(instanceId)} of ${service} is registered by another principal`;
    }
    if (!claim || claim.holders === 0) this.claims.set(key, { principal, holders: 1 });
    else claim.holders++;
    this.keyOf.set(holder, key);
    return undefined;
  }

  /** The stream left: once no stream holds the id, it is free again. */
  release(holder: object): void {
    const key = this.keyOf.get(holder);
    if (key === undefined) return;
    this.keyOf.delete(holder);
    const claim = this.claims.get(key);
    if (!claim) return;
    if (--claim.holders <= 0) this.claims.delete(key);
  }

  /** The principal holding an id now (for views and tests), or undefined. */
  ownerOf(service: string, instanceId: string): string | undefined {
    return this.claims.get(`${service}\u0000${instanceId}`)?.principal;
  }
}

/**
 * Instance id patterns as token files and certificate bindings write them: an exact id, or a
 * prefix ending in `*` ("edge-*" admits "edge-1", "edge-eu-2"). "*" alone admits any id.
 */
export function idMatches(patterns: readonly string[], instanceId: string): boolean {
  return patterns.some((p) => (p.endsWith("*") ? instanceId.startsWith(p.slice(0, -1)) : p === instanceId));
}
