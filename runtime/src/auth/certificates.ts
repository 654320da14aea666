// Certificate authentication of instances: with mTLS (`--tls-client-ca`), the router knows
// which certificate each Register stream came with; this authorizer admits an instance only
// for the services its certificate's names are allowed, and can pin the instance id to a
// certificate name so one instance cannot register under another's id.
import type { HelloInfo, PeerCertificateInfo } from "../tunnel/index.js";
import { idMatches } from "../tunnel/instance-identity.js";
import { ANY_SERVICE, type Authorize } from "./tokens.js";

export interface CertificateAuthorizerOptions {
  /**
   * Certificate name → the services it may register (`"*"`: any). A certificate's names are
   * its subject CN and the values of its subject alternative names ("instance-a",
   * "instance-a.example", "spiffe://example/instance-a").
   */
  names: Readonly<Record<string, readonly string[]>>;
  /** Also require the Hello's instance id to be one of the certificate's names (default false). */
  bindInstanceId?: boolean;
  /**
   * Certificate name → the instance ids it may register: exact ids or prefixes ending in `*`
   * ("edge-*"). A certificate with a name listed here may register only those ids (besides
   * its own names when `bindInstanceId` is set); names not listed are not restricted unless
   * `bindInstanceId` is set.
   */
  instances?: Readonly<Record<string, readonly string[]>>;
}

/** The names a certificate vouches for: its CN, then each SAN without its type ("DNS:a" → "a"). */
export function certificateNames(cert: PeerCertificateInfo): string[] {
  const sans = cert.subjectAltNames.map((s) => s.slice(s.indexOf(":") + 1));
  return [...(cert.commonName !== undefined ? [cert.commonName] : []), ...sans];
}

/**
 * An `authorize` hook for `createRouter` that admits instances by their client certificate.
 * It needs a router that requires client certificates (mTLS); without one every instance is
 * refused, saying so.
 */
export function certificateAuthorizer(options: CertificateAuthorizerOptions): Authorize {
  const allowed = new Map(Object.entries(options.names).map(([name, services]) => [name, new Set(services)]));
  const bindings = new Map(Object.entries(options.instances ?? {}));
  return (hello: HelloInfo) => {
    const cert = hello.certificate;
    if (!cert) return "no client certificate (the router must require one: mTLS)";
    const names = certificateNames(cert);
    const shown = cert.commonName !== undefined ? `CN=${cert.commonName}` : `SHA-256 ${cert.fingerprint256}`;
    if (!names.some((n) => allowed.get(n)?.has(hello.service) || allowed.get(n)?.has(ANY_SERVICE))) {
      return `certificate ${shown} may not register ${hello.service}`;
    }
    const bound = names.flatMap((n) => bindings.get(n) ?? []);
    const restricted = options.bindInstanceId === true || names.some((n) => bindings.has(n));
    if (restricted && !names.includes(hello.instanceId) && !idMatches(bound, hello.instanceId)) {
      return bound.length > 0
        ? `certificate ${shown} may not register instance id ${JSON.stringify(hello.instanceId)}`
        : `instance id ${JSON.stringify(hello.instanceId)} is not a name of its certificate ${shown}`;
    }
    return undefined;
  };
}

/** Admits an instance only when every hook does; the first refusal is the reason (e.g. a certificate and a token). */
export function everyAuthorizer(...hooks: Authorize[]): Authorize {
  return (hello) => {
    for (const h of hooks) {
      const reason = h(hello);
      if (reason) return reason;
    }
    return undefined;
  };
}
