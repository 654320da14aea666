// TLS credentials from PEM files, checked before use: a missing file, something that is not
// a certificate or key, a key that does not belong to its certificate or an expired
// certificate fails at startup with one line naming the file, instead of every handshake
// failing later with an OpenSSL code.
import { X509Certificate, createPrivateKey, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import { describeFsError } from "./tokens.js";

export interface ServerTlsFiles {
  /** The router's certificate (PEM; may be followed by its chain). */
  cert: string;
  /** Its private key (PEM). */
  key: string;
  /** When given, every peer (clients and instances) must present a certificate signed by this CA (mTLS). */
  clientCa?: string;
}

export interface ChannelTlsFiles {
  /** CA certificate(s) to trust (PEM); default: the system's roots. */
  ca?: string;
  /** A client certificate (PEM) for mTLS; needs `key`. */
  cert?: string;
  key?: string;
}

/** How errors name each file, e.g. `{ cert: "--tls-cert" }` for a command line. */
export type FileLabels<T> = Partial<Record<keyof T, string>>;

/** grpc-js server credentials for `router.listen(address, credentials)`. */
export function loadServerCredentials(files: ServerTlsFiles, labels: FileLabels<ServerTlsFiles> = {}): grpc.ServerCredentials {
  const cert = readCertificate(files.cert, labels.cert ?? "certificate");
  const key = readKey(files.key, labels.key ?? "private key");
  checkPair(cert, key, files, labels);
  const ca = files.clientCa === undefined ? null : readCertificate(files.clientCa, labels.clientCa ?? "client CA").pem;
  return grpc.ServerCredentials.createSsl(ca, [{ cert_chain: cert.pem, private_key: key.pem }], ca !== null);
}

/** grpc-js channel credentials for a bridge (`BridgeOptions.credentials`) or a client. */
export function loadChannelCredentials(files: ChannelTlsFiles = {}, labels: FileLabels<ChannelTlsFiles> = {}): grpc.ChannelCredentials {
  const ca = files.ca === undefined ? null : readCertificate(files.ca, labels.ca ?? "CA certificate").pem;
  if ((files.cert === undefined) !== (files.key === undefined)) {
    const [has, missing] =
      files.cert === undefined
        ? [labels.key ?? "a client key", labels.cert ?? "its certificate"]
        : [labels.cert ?? "a client certificate", labels.key ?? "its private key"];
    throw new Error(`${has} needs ${missing} too`);
  }
  if (files.cert === undefined || files.key === undefined) return grpc.credentials.createSsl(ca);
  const cert = readCertificate(files.cert, labels.cert ?? "client certificate");
  const key = readKey(files.key, labels.key ?? "client key");
  checkPair(cert, key, files as { cert: string; key: string }, labels);
  return grpc.credentials.createSsl(ca, key.pem, cert.pem);
}

interface Pem {
  pem: Buffer;
}

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new Error(`${what} ${file}: cannot read it: ${describeFsError(e)}`);
  }
}

function readCertificate(file: string, what: string): Pem & { x509: X509Certificate } {
  const pem = readPem(file, what);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(pem);
  } catch {
    throw new Error(`${what} ${file}: not a PEM certificate`);
  }
  if (Date.parse(x509.validTo) < Date.now()) throw new Error(`${what} ${file}: the certificate expired on ${x509.validTo}`);
  return { pem, x509 };
}

function readKey(file: string, what: string): Pem & { key: KeyObject } {
  const pem = readPem(file, what);
  try {
    return { pem, key: createPrivateKey(pem) };
  } catch {
    throw new Error(`${what} ${file}: not a PEM private key (an encrypted key is not supported)`);
  }
}

function checkPair(
  cert: { x509: X509Certificate },
  key: { key: KeyObject },
  files: { cert: string; key: string },
  labels: { cert?: string; key?: string },
): void {
  if (!cert.x509.checkPrivateKey(key.key)) {
    throw new Error(`${labels.key ?? "private key"} ${files.key} is not the key of ${labels.cert ?? "certificate"} ${files.cert}`);
  }
}
