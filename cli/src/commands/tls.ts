// Command-line options for TLS and instance authentication, shared by `serve` and `bridge`:
// turning them into grpc-js credentials and an `authorize` hook, with errors that name the
// option and the file.
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import {
  loadChannelCredentials,
  loadServerCredentials,
  readTokenSecret,
  tokenCredentials,
  tokenFileAuthorizer,
  type Authorize,
  type ChannelTlsFiles,
} from "@grpcrouter/runtime";
import { UsageError, type OptionSpecs } from "../command.js";

type Values = Record<string, string | boolean | string[] | undefined>;

const str = (v: Values, name: string): string | undefined => {
  const x = v[name];
  return typeof x === "string" && x !== "" ? x : undefined;
};

export const serveSecurityOptions: OptionSpecs = {
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  "tls-client-ca": { type: "string" },
  "token-file": { type: "string" },
};

export const serveSecurityDetails = [
  "  --tls-cert FILE   serve TLS with this certificate (PEM, its chain after it); needs --tls-key",
  "  --tls-key FILE    the certificate's private key (PEM, unencrypted)",
  "  --tls-client-ca FILE",
  "                    require a certificate signed by this CA from every peer, clients and",
  "                    instances alike (mTLS)",
  "  --token-file FILE instances must send a token listed in FILE to register; one per line:",
  "                    TOKEN (any service) or SERVICE TOKEN (that service only), optionally",
  "                    then instances=ID,PREFIX*,… (the token may register only those ids);",
  "                    # comments. Edits take effect for the next registrations (no restart).",
  "                    An instance id belongs to whoever registered it first while it is",
  "                    registered: another token or certificate is refused PERMISSION_DENIED",
];

export interface ServeSecurity {
  credentials: grpc.ServerCredentials | undefined;
  authorize: Authorize | undefined;
  /** For the startup line, e.g. "TLS, client certificates required, 3 instance tokens". */
  summary: string;
}

/**
 * `serve`'s --tls-* and --token-file, read and checked now (bad files fail before listening).
 * The token file is read again when it changes; `log` hears about that.
 */
export function serveSecurity(values: Values, cwd: string, log: (line: string) => void): ServeSecurity {
  const cert = str(values, "tls-cert");
  const key = str(values, "tls-key");
  const clientCa = str(values, "tls-client-ca");
  const tokenFile = str(values, "token-file");
  if ((cert === undefined) !== (key === undefined)) throw new UsageError(cert ? "--tls-cert needs --tls-key" : "--tls-key needs --tls-cert");
  if (clientCa && !cert) throw new UsageError("--tls-client-ca needs --tls-cert and --tls-key");
  const abs = (f: string) => path.resolve(cwd, f);
  const credentials =
    cert && key
      ? loadServerCredentials(
          { cert: abs(cert), key: abs(key), ...(clientCa ? { clientCa: abs(clientCa) } : {}) },
          { cert: "--tls-cert", key: "--tls-key", clientCa: "--tls-client-ca" },
        )
      : undefined;
  let authorize: Authorize | undefined;
  let tokens = 0;
  if (tokenFile) {
    const file = abs(tokenFile);
    const byFile = tokenFileAuthorizer(file, {
      onReload: (n) => log(`token file ${file} changed: ${n} token${n === 1 ? "" : "s"} now`),
      onError: (e) => log(`${e.message}; keeping the previous tokens`),
    });
    tokens = byFile.tokenCount;
    authorize = byFile;
  }
  const parts = [credentials ? (clientCa ? "TLS, client certificates required" : "TLS") : "plaintext"];
  if (authorize) parts.push(`instances need one of ${tokens} token${tokens === 1 ? "" : "s"}`);
  return { credentials, authorize, summary: parts.join(", ") };
}

export const bridgeSecurityOptions: OptionSpecs = {
  "router-tls": { type: "boolean" },
  "router-ca": { type: "string" },
  "router-cert": { type: "string" },
  "router-key": { type: "string" },
  token: { type: "string" },
  "token-file": { type: "string" },
  "target-tls": { type: "boolean" },
  "target-ca": { type: "string" },
};

export const bridgeSecurityDetails = [
  "  --router-tls        dial the router with TLS (system CAs unless --router-ca)",
  "  --router-ca FILE    trust this CA for the router's certificate (implies --router-tls)",
  "  --router-cert FILE  a client certificate for a router that requires one (mTLS); needs",
  "  --router-key FILE   its private key (both imply --router-tls)",
  "  --token TOKEN       send this token when registering (visible to other local users in",
  "                      the process list; prefer --token-file)",
  "  --token-file FILE   send the token this file holds",
  "  --target-tls        dial --target with TLS (system CAs unless --target-ca)",
  "  --target-ca FILE    trust this CA for the target's certificate (implies --target-tls)",
];

export interface BridgeSecurity {
  routerCredentials: grpc.ChannelCredentials | undefined;
  credentialsHook: (() => Record<string, string>) | undefined;
  targetCredentials: grpc.ChannelCredentials;
}

/** `bridge`'s --router-*, --token* and --target-* options. */
export function bridgeSecurity(values: Values, cwd: string): BridgeSecurity {
  const abs = (f: string | undefined) => (f === undefined ? undefined : path.resolve(cwd, f));
  const routerFiles: ChannelTlsFiles = {};
  const ca = abs(str(values, "router-ca"));
  const cert = abs(str(values, "router-cert"));
  const key = abs(str(values, "router-key"));
  if ((cert === undefined) !== (key === undefined)) throw new UsageError(cert ? "--router-cert needs --router-key" : "--router-key needs --router-cert");
  if (ca) routerFiles.ca = ca;
  if (cert && key) Object.assign(routerFiles, { cert, key });
  const routerTls = values["router-tls"] === true || ca !== undefined || cert !== undefined;
  const routerCredentials = routerTls ? loadChannelCredentials(routerFiles, { ca: "--router-ca", cert: "--router-cert", key: "--router-key" }) : undefined;

  const token = str(values, "token");
  const tokenFile = str(values, "token-file");
  if (token && tokenFile) throw new UsageError("give --token or --token-file, not both");
  const secret = token ?? (tokenFile ? readTokenSecret(abs(tokenFile)!) : undefined);
  const credentialsHook = secret === undefined ? undefined : tokenCredentials(secret);

  const targetCa = abs(str(values, "target-ca"));
  const targetTls = values["target-tls"] === true || targetCa !== undefined;
  const targetCredentials = targetTls ? loadChannelCredentials(targetCa ? { ca: targetCa } : {}, { ca: "--target-ca" }) : grpc.credentials.createInsecure();
  return { routerCredentials, credentialsHook, targetCredentials };
}
