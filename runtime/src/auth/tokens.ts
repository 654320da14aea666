// Shared-secret authentication of instances: a bridge sends a token in its Hello
// (`credentials: { token }`), the router's `authorize` hook checks it against the tokens it
// was given, per service. The comparison runs in constant time over every known token, so
// neither timing nor the refusal reason tells a caller how close a guess was.
import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import type { HelloInfo } from "../tunnel/index.js";

/** The `Hello.credentials` key a token travels under, unless told otherwise. */
export const TOKEN_CREDENTIAL_KEY = "token";

/** Tokens that let any service register. */
export const ANY_SERVICE = "*";

/**
 * Accepted tokens: one token, a list (both for every service), or service name → its tokens,
 * where the key `"*"` (ANY_SERVICE) lists tokens good for every service.
 */
export type AcceptedTokens = string | readonly string[] | Readonly<Record<string, readonly string[]>>;

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
  const digests = new Map([...byService].map(([service, tokens]) => [service, tokens.map(digest)]));
  const any = digests.get(ANY_SERVICE) ?? [];
  return (hello) => {
    const given = hello.credentials[key];
    if (given === undefined || given === "") return `no token: the instance sent no credentials[${JSON.stringify(key)}]`;
    const candidates = [...any, ...(digests.get(hello.service) ?? [])];
    if (candidates.length === 0) return `no token is accepted for ${hello.service}`;
    const guess = digest(given);
    let ok = false;
    // No early exit: every candidate is compared, so the time taken does not say which matched.
    for (const c of candidates) ok = timingSafeEqual(c, guess) || ok;
    return ok ? undefined : `the token is not valid for ${hello.service}`;
  };
}

function normalize(tokens: AcceptedTokens): Map<string, string[]> {
  const entries: Array<[string, readonly string[]]> =
    typeof tokens === "string" ? [[ANY_SERVICE, [tokens]]] : isList(tokens) ? [[ANY_SERVICE, tokens]] : Object.entries(tokens);
  const out = new Map<string, string[]>();
  let count = 0;
  for (const [service, list] of entries) {
    for (const t of list) {
      if (typeof t !== "string" || t === "") throw new Error(`tokenAuthorizer: an empty token for ${service === ANY_SERVICE ? "every service" : service}`);
      count++;
    }
    out.set(service, [...(out.get(service) ?? []), ...list]);
  }
  // Most likely a configuration mistake (an empty file): every instance would be refused.
  if (count === 0) throw new Error("tokenAuthorizer: no tokens given; every instance would be refused");
  return out;
}

function isList(t: AcceptedTokens): t is readonly string[] {
  return Array.isArray(t);
}

/** A `credentialsHook` for a bridge that sends `token` (under `key`, default "token"). */
export function tokenCredentials(token: string, key = TOKEN_CREDENTIAL_KEY): () => Record<string, string> {
  return () => ({ [key]: token });
}

/**
 * Parses a router's token file: one entry per line, `TOKEN` (good for every service) or
 * `SERVICE TOKEN` (only for that fully qualified service); blank lines and `#` comments are
 * skipped. Errors name `file:line`.
 */
export function parseTokenFile(text: string, file: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  let count = 0;
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const fields = line.split(/\s+/);
    let service = ANY_SERVICE;
    let token: string;
    if (fields.length === 1) token = fields[0]!;
    else if (fields.length === 2) {
      [service, token] = fields as [string, string];
      if (!/^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$/.test(service)) throw new Error(`${file}:${i + 1}: ${JSON.stringify(service)} is not a service name (expected e.g. demo.v1.Echo)`);
    } else throw new Error(`${file}:${i + 1}: expected "TOKEN" or "SERVICE TOKEN", found ${fields.length} words`);
    (out[service] ??= []).push(token);
    count++;
  });
  if (count === 0) throw new Error(`${file}: no tokens in the file; every instance would be refused`);
  return out;
}

/** Reads and parses a router's token file (see parseTokenFile). */
export function readTokenFile(file: string): Record<string, string[]> {
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
  const build = (tokens: Record<string, string[]>) => tokenAuthorizer({ tokens, ...(options.key ? { key: options.key } : {}) });
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
  const count = (t: Record<string, string[]>) => Object.values(t).reduce((n, l) => n + l.length, 0);
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
