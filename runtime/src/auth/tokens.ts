// Shared-secret authentication of instances: a bridge sends a token in its Hello
// (`credentials: { token }`), the router's `authorize` hook checks it against the tokens it
// was given, per service. The comparison runs in constant time over every known token, so
// neither timing nor the refusal reason tells a caller how close a guess was.
import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import type { HelloInfo } from "../tunnel/index.js";
import { idMatches } from "../tunnel/instance-identity.js";

/** The `Hello.credentials` key a token travels under, unless told otherwise. */
export const TOKEN_CREDENTIAL_KEY = "token";

/** Tokens that let any service register. */
export const ANY_SERVICE = "*";

/**
 * A token that may register only some instance ids: exact ids or prefixes ending in `*`
 * ("edge-*"). So a leaked token of one fleet cannot register under another fleet's ids.
 */
export interface BoundToken {
  token: string;
  instances: readonly string[];
}

/** A token good for any instance id, or one bound to some ids. */
export type AcceptedToken = string | BoundToken;

/**
 * Accepted tokens: one token, a list (both for every service), or service name → its tokens,
 * where the key `"*"` (ANY_SERVICE) lists tokens good for every service.
 */
export type AcceptedTokens = string | readonly AcceptedToken[] | Readonly<Record<string, readonly AcceptedToken[]>>;

export interface TokenAuthorizerOptions {
  tokens: AcceptedTokens;
  /** The `Hello.credentials` key holding the token (default "token"). */
  key?: string;
}

export type Authorize = (hello: HelloInfo) => string | undefined;

const digest = (s: string): Buffer => createHash("sha256").update(s, "utf8").digest();

/**
 * An `authorize` hook for `createRouter`: accepts an instance whose Hello carries one of the
 * tokens accepted for its service, refuses it otherwise with a reason that names the service
 * and the credential key but never a token.
 */
export function tokenAuthorizer(options: TokenAuthorizerOptions): Authorize {
  const key = options.key ?? TOKEN_CREDENTIAL_KEY;
  const byService = normalize(options.tokens);
  // Digests have one length, so timingSafeEqual can compare a guess of any length.
  const digests = new Map(
    [...byService].map(([service, tokens]) => [
      service,
      tokens.map((t) => (typeof t === "string" ? { digest: digest(t), instances: undefined } : { digest: digest(t.token), instances: t.instances })),
    ]),
  );
  const any = digests.get(ANY_SERVICE) ?? [];
  return (hello) => {
    const given = hello.credentials[key];
    if (given === undefined || given === "") return `no token: the instance sent no credentials[${JSON.stringify(key)}]`;
    const candidates = [...any, ...(digests.get(hello.service) ?? [])];
    if (candidates.length === 0) return `no token is accepted for ${hello.service}`;
    const guess = digest(given);
    let ok = false;
    let bound = false;
    // No early exit: every candidate is compared, so the time taken does not say which matched.
    for (const c of candidates) {
      if (!timingSafeEqual(c.digest, guess)) continue;
      if (c.instances === undefined || idMatches(c.instances, hello.instanceId)) ok = true;
      else bound = true;
    }
    if (ok) return undefined;
    return bound ? `the token may not register instance id ${JSON.stringify(hello.instanceId)}` : `the token is not valid for ${hello.service}`;
  };
}

function normalize(tokens: AcceptedTokens): Map<string, AcceptedToken[]> {
  const entries: Array<[string, readonly AcceptedToken[]]> =
    typeof tokens === "string" ? [[ANY_SERVICE, [tokens]]] : isList(tokens) ? [[ANY_SERVICE, tokens]] : Object.entries(tokens);
  const out = new Map<string, AcceptedToken[]>();
  let count = 0;
  for (const [service, list] of entries) {
    for (const t of list) {
      const text = typeof t === "string" ? t : t?.token;
      if (typeof text !== "string" || text === "")
        throw new Error(`tokenAuthorizer: an empty token for ${service === ANY_SERVICE ? "every service" : service}`);
      if (typeof t !== "string" && (!Array.isArray(t.instances) || t.instances.length === 0 || t.instances.some((p) => typeof p !== "string" || p === ""))) {
        throw new Error(
          `tokenAuthorizer: a token for ${service === ANY_SERVICE ? "every service" : service} is bound to no instance id (instances: [] admits nobody)`,
        );
      }
      count++;
    }
    out.set(service, [...(out.get(service) ?? []), ...list]);
  }
  // Most likely a configuration mistake (an empty file): every instance would be refused.
  if (count === 0) throw new Error("tokenAuthorizer: no tokens given; every instance would be refused");
  return out;
}

function isList(t: AcceptedTokens): t is readonly AcceptedToken[] {
  return Array.isArray(t);
}

/** A `credentialsHook` for a bridge that sends `token` (under `key`, default "token"). */
export function tokenCredentials(token: string, key = TOKEN_CREDENTIAL_KEY): () => Record<string, string> {
  return () => ({ [key]: token });
}

/**
 * Parses a router's token file: one entry per line, `TOKEN` (good for every service) or
 * `SERVICE TOKEN` (only for that fully qualified service, or `*` for any), either followed by
 * `instances=ID,PREFIX*,…` to bind the token to those instance ids (a prefix ends in `*`);
 * blank lines and `#` comments are skipped. Errors name `file:line`.
 */
export function parseTokenFile(text: string, file: string): Record<string, AcceptedToken[]> {
  const out: Record<string, AcceptedToken[]> = {};
  let count = 0;
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const fields = line.split(/\s+/);
    let instances: string[] | undefined;
    if (fields.length > 1 && fields[fields.length - 1]!.startsWith("instances=")) {
      instances = fields.pop()!.slice("instances=".length).split(",");
      // A prefix has one *, at its end: the first * is the last character.
      const bad = instances.find((p) => p === "" || (p.includes("*") && p.indexOf("*") !== p.length - 1));
      if (bad !== undefined)
        throw new Error(
          `${file}:${i + 1}: instances=${instances.join(",")}: ${bad === "" ? "an empty instance id" : `${JSON.stringify(bad)} is not an id or a prefix ending in *`}`,
        );
    }
    let service = ANY_SERVICE;
    let token: string;
    if (fields.length === 1) token = fields[0]!;
    else if (fields.length === 2) {
      [service, token] = fields as [string, string];
      if (service !== ANY_SERVICE && !/^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$/.test(service))
        throw new Error(`${file}:${i + 1}: ${JSON.stringify(service)} is not a service name (expected e.g. demo.v1.Echo)`);
    } else throw new Error(`${file}:${i + 1}: expected "TOKEN" or "SERVICE TOKEN", found ${fields.length} words`);
    (out[service] ??= []).push(instances ? { token, instances } : token);
    count++;
  });
  if (count === 0) throw new Error(`${file}: no tokens in the file; every instance would be refused`);
  return out;
}

/** Reads and parses a router's token file (see parseTokenFile). */
export function readTokenFile(file: string): Record<string, AcceptedToken[]> {
  return parseTokenFile(readText(file, "token file"), file);
}

export interface TokenFileAuthorizerOptions {
  /** The `Hello.credentials` key holding the token (default "token"). */
  key?: string;
  /** Told after the file changed and was read again (count: tokens in it). */
  onReload?: (count: number) => void;
  /** Told when a changed file cannot be used; the previous tokens stay in force. */
  onError?: (error: Error) => void;
}

/**
 * `tokenAuthorizer` over a token file that may change while the router runs (rotation,
 * a Kubernetes secret swapped under its mount): each Hello checks the file's identity
 * (inode, size, mtime) and reads it again when it changed. A file that became unreadable or
 * malformed keeps the tokens read last, so a botched edit never locks every instance out.
 * Reading it the first time throws, like readTokenFile.
 */
export function tokenFileAuthorizer(file: string, options: TokenFileAuthorizerOptions = {}): Authorize & { readonly tokenCount: number } {
  const build = (tokens: Record<string, AcceptedToken[]>) => tokenAuthorizer({ tokens, ...(options.key ? { key: options.key } : {}) });
  const stamp = (): string => {
    let st;
    try {
      st = statSync(file);
    } catch (e) {
      throw new Error(`cannot read the token file ${file}: ${describeFsError(e)}`);
    }
    return `${st.ino}:${st.size}:${st.mtimeMs}`;
  };
  let seen = stamp();
  let tokens = readTokenFile(file);
  let current = build(tokens);
  let lastError = "";
  const count = (t: Record<string, AcceptedToken[]>) => Object.values(t).reduce((n, l) => n + l.length, 0);
  const authorize = (hello: HelloInfo): string | undefined => {
    try {
      const now = stamp();
      if (now !== seen) {
        seen = now;
        const next = readTokenFile(file);
        current = build(next);
        tokens = next;
        options.onReload?.(count(tokens));
      }
      lastError = "";
    } catch (e) {
      const message = (e as Error).message;
      // Once per distinct problem, not once per Hello.
      if (message !== lastError) options.onError?.(new Error(message));
      lastError = message;
    }
    return current(hello);
  };
  return Object.defineProperty(authorize, "tokenCount", { get: () => count(tokens) }) as Authorize & { readonly tokenCount: number };
}

/** Reads a bridge's secret: the file holds one token (surrounding whitespace is ignored). */
export function readTokenSecret(file: string): string {
  const token = readText(file, "token file").trim();
  if (token === "") throw new Error(`${file}: the token file is empty`);
  if (/\s/.test(token)) throw new Error(`${file}: expected one token on one line`);
  return token;
}

/** Reads a UTF-8 file; the error names what it is and the file, on one line. */
export function readText(file: string, what: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (e) {
    throw new Error(`cannot read the ${what} ${file}: ${describeFsError(e)}`);
  }
}

export function describeFsError(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  switch (err.code) {
    case "ENOENT":
      return "no such file";
    case "EACCES":
    case "EPERM":
      return "permission denied";
    case "EISDIR":
      return "it is a directory";
    default:
      return err.message ?? String(e);
  }
}
