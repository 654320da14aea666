// Client authorization per service and method: a call is let through only when one of the
// rules for its service and method admits the caller — by the names of its mTLS client
// certificate, or by a bearer JWT (`authorization: Bearer …`) whose signature verifies
// against a JWKS (a file, or a URL fetched and cached by `jose`) and whose claims match.
// Services the config does not name are open; a named service is closed except for what its
// rules allow. Denied calls are answered by the router (UNAUTHENTICATED without valid
// credentials, PERMISSION_DENIED with credentials that are not allowed) and never reach
// an instance.
import { readFileSync } from "node:fs";
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify, type JSONWebKeySet, type JWTPayload, type JWTVerifyGetKey } from "jose";
import type { PeerCertificateInfo } from "../tunnel/peer-certificate.js";
import { certificateNames } from "./certificates.js";

export interface ClientRule {
  /** Method names of the service ("Say"); default every method. */
  methods?: string[];
  /** Client certificate names (CN or SAN values) admitted. */
  certificates?: string[];
  /** A verified JWT admitted when its claims match; `{}` admits any valid token. */
  jwt?: { subjects?: string[]; scopes?: string[] };
}

export interface ClientAuthConfig {
  /** Where JWT signing keys come from: a JWKS file, or a URL (fetched, cached, refreshed by jose). */
  jwks?: { file?: string; url?: string };
  /** Required `iss` and `aud` of every JWT. */
  issuer?: string;
  audience?: string;
  /** Service name ("demo.v1.Echo", or "*" for every service) → rules; any rule admitting the call lets it through. */
  services: Record<string, ClientRule[]>;
}

export interface ClientCall {
  service: string;
  method: string;
  /** The call's `authorization` header, if any. */
  authorization: string | undefined;
  certificate: PeerCertificateInfo | undefined;
}

export interface ClientDenial {
  code: "UNAUTHENTICATED" | "PERMISSION_DENIED";
  message: string;
}

export type ClientAuthorizer = (call: ClientCall) => Promise<ClientDenial | undefined>;

/** Builds an authorizer; a bad config (no keys for JWT rules, an unreadable JWKS file) throws naming the field. */
export function clientAuthorizer(config: ClientAuthConfig): ClientAuthorizer {
  const needsJwt = Object.values(config.services).some((rules) => rules.some((r) => r.jwt !== undefined));
  let keys: JWTVerifyGetKey | undefined;
  if (config.jwks?.file) {
    let set: JSONWebKeySet;
    try {
      set = JSON.parse(readFileSync(config.jwks.file, "utf8")) as JSONWebKeySet;
    } catch (e) {
      throw new Error(`clientAuth.jwks.file ${config.jwks.file}: ${(e as Error).message}`);
    }
    if (!Array.isArray(set.keys)) throw new Error(`clientAuth.jwks.file ${config.jwks.file}: expected a JWKS {"keys": [...]}`);
    keys = createLocalJWKSet(set);
  } else if (config.jwks?.url) {
    keys = createRemoteJWKSet(new URL(config.jwks.url));
  }
  if (needsJwt && !keys) throw new Error("clientAuth: jwt rules need clientAuth.jwks (file or url)");

  return async (call) => {
    const rules = (config.services[call.service] ?? config.services["*"])?.filter(
      (r) => !r.methods || r.methods.includes(call.method) || r.methods.includes("*"),
    );
    if (rules === undefined) return undefined; // the service is not under client authorization
    const names = call.certificate ? certificateNames(call.certificate) : [];
    if (rules.some((r) => r.certificates?.some((n) => names.includes(n)))) return undefined;
    const jwtRules = rules.filter((r) => r.jwt !== undefined);
    const bearer = /^Bearer\s+(\S+)$/i.exec(call.authorization ?? "")?.[1];
    let payload: JWTPayload | undefined;
    if (bearer && jwtRules.length > 0 && keys) {
      try {
        payload = (
          await jwtVerify(bearer, keys, { ...(config.issuer ? { issuer: config.issuer } : {}), ...(config.audience ? { audience: config.audience } : {}) })
        ).payload;
      } catch (e) {
        return { code: "UNAUTHENTICATED", message: `grpcrouter: the bearer token is not valid: ${(e as Error).message}` };
      }
      const scopes = typeof payload.scope === "string" ? payload.scope.split(" ") : Array.isArray(payload.scp) ? (payload.scp as string[]) : [];
      const ok = jwtRules.some(
        (r) => (!r.jwt!.subjects || r.jwt!.subjects.includes(payload!.sub ?? "")) && (!r.jwt!.scopes || r.jwt!.scopes.every((s) => scopes.includes(s))),
      );
      if (ok) return undefined;
    }
    const what = `/${call.service}/${call.method}`;
    if (!bearer && names.length === 0) return { code: "UNAUTHENTICATED", message: `grpcrouter: ${what} needs a client certificate or a bearer token` };
    return {
      code: "PERMISSION_DENIED",
      message: `grpcrouter: ${what} is not allowed for this ${payload ? `token (sub ${JSON.stringify(payload.sub ?? "")})` : "client"}`,
    };
  };
}
