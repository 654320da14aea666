// The TLS identity of an instance's connection, for the router's `authorize` hook: with
// mTLS the instance proved it holds the key of this certificate, so an authorizer can tie a
// certificate name to the services (or instance ids) it may register.
import type { PeerCertificate, TLSSocket } from "node:tls";
import type * as grpc from "@grpc/grpc-js";

/** A peer's client certificate, as the router verified it during the TLS handshake. */
export interface PeerCertificateInfo {
  /** The subject's CN, e.g. "instance-a"; undefined when the subject has none. */
  readonly commonName: string | undefined;
  /** Subject attributes, e.g. { CN: "instance-a", O: "Acme" } (several values joined by ", "). */
  readonly subject: Readonly<Record<string, string>>;
  /** Issuer attributes, e.g. { CN: "Acme CA" }. */
  readonly issuer: Readonly<Record<string, string>>;
  /**
   * Subject alternative names as OpenSSL prints them, e.g. ["DNS:instance-a.example",
   * "URI:spiffe://example/instance-a", "IP Address:10.0.0.7"].
   */
  readonly subjectAltNames: readonly string[];
  /** SHA-256 fingerprint, colon-separated upper-case hex (as `openssl x509 -fingerprint -sha256` prints). */
  readonly fingerprint256: string;
  readonly serialNumber: string;
  /** e.g. "Nov 30 15:00:00 2026 GMT" */
  readonly validTo: string;
}

/**
 * The client certificate of a grpc-js server call, or undefined when the connection is
 * plaintext or TLS without a client certificate (Node then reports an empty object).
 */
export function peerCertificateOf(call: Pick<grpc.ServerDuplexStream<unknown, unknown>, "getAuthContext">): PeerCertificateInfo | undefined {
  let cert: PeerCertificate | undefined;
  try {
    cert = call.getAuthContext()?.sslPeerCertificate;
  } catch {
    return undefined; // a closed connection has no context
  }
  return infoOf(cert);
}

/** The client certificate of a TLS connection (a node:http2 session's socket), or undefined. */
export function peerCertificateFromSocket(socket: Pick<TLSSocket, "getPeerCertificate">): PeerCertificateInfo | undefined {
  try {
    return infoOf(socket.getPeerCertificate());
  } catch {
    return undefined; // a closed connection has no certificate
  }
}

function infoOf(cert: PeerCertificate | undefined): PeerCertificateInfo | undefined {
  if (!cert || !cert.fingerprint256) return undefined;
  const subject = names(cert.subject);
  return Object.freeze({
    commonName: subject.CN,
    subject,
    issuer: names(cert.issuer),
    subjectAltNames: Object.freeze(splitAltNames(cert.subjectaltname)),
    fingerprint256: cert.fingerprint256,
    serialNumber: cert.serialNumber,
    validTo: cert.valid_to,
  });
}

function names(dn: unknown): Readonly<Record<string, string>> {
  const out: Record<string, string> = {};
  if (dn && typeof dn === "object") {
    for (const [k, v] of Object.entries(dn as Record<string, unknown>)) {
      if (typeof v === "string") out[k] = v;
      else if (Array.isArray(v)) out[k] = v.join(", ");
    }
  }
  return Object.freeze(out);
}

/** "DNS:a, URI:b" → ["DNS:a", "URI:b"]. A name holding ", " would be quoted by Node; rare enough to split plainly. */
function splitAltNames(s: string | undefined): string[] {
  if (!s) return [];
  return s.split(/,\s*/).filter((x) => x !== "");
}
