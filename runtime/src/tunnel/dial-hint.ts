// Why a bridge cannot reach its router, in words a user can act on. grpc-js reports a
// plaintext client dialling a TLS port only as "Failed to connect" (the server drops the
// connection), and a TLS client dialling a plaintext port as an OpenSSL "wrong version
// number": neither names the likely mismatch. A hint is given only when the error indicates
// it; for "Failed to connect" a TLS handshake with the router checks first whether it
// speaks TLS (and whether it demands a client certificate) before saying so.
import { connect as tlsConnect } from "node:tls";

const PROBE_TIMEOUT_MS = 3000;

/** What the router turned out to be when probed with a TLS handshake. */
type Probe = "tls" | "tls-wants-client-cert" | "not-tls" | "unknown";

/**
 * A hint for a Register stream that failed with `details` before the router answered, or
 * undefined when the error does not point at TLS. `tls`: whether the bridge dials with TLS.
 */
export async function dialHint(address: string, tls: boolean, details: string): Promise<string | undefined> {
  if (tls) {
    // OpenSSL read a record that is not TLS: the router answered in plaintext (HTTP/2).
    if (/wrong version number|packet length too long|unknown protocol|record layer failure/i.test(details)) {
      return "the router answered without TLS: it may be a plaintext router (dial it without TLS: no credentials / --router-tls)";
    }
    if (
      /unable to verify|self[- ]signed certificate|unable to get (local )?issuer certificate|certificate has expired|certificate is not yet valid/i.test(
        details,
      )
    ) {
      return "the router's certificate is not trusted: give the CA that signed it (loadChannelCredentials({ ca }) / --router-ca)";
    }
    if (/Hostname\/IP does not match|altnames/i.test(details)) {
      return "the router's certificate is not for this address: dial it by a name in its certificate";
    }
    // The router's TLS alert when our certificate is missing or signed by a CA it does not
    // trust; grpc-js sometimes loses the alert and says only "Failed to connect": then ask.
    const alert = /alert (certificate required|bad certificate|unknown ca|handshake failure)/i.test(details);
    if (alert || (/Failed to connect/.test(details) && (await probeTls(address)) === "tls-wants-client-cert")) {
      return "the router requires a client certificate it trusts (mTLS): give one signed by its client CA (loadChannelCredentials({ cert, key }) / --router-cert, --router-key)";
    }
    return undefined;
  }
  if (/Failed to connect/.test(details)) {
    const probe = await probeTls(address);
    if (probe === "tls" || probe === "tls-wants-client-cert") {
      return "the router speaks TLS: dial it with TLS (BridgeOptions.credentials, e.g. loadChannelCredentials({ ca }) / --router-tls, --router-ca)";
    }
  }
  return undefined;
}

/** One TLS handshake with `address` (no verification: only the protocol matters here). */
function probeTls(address: string): Promise<Probe> {
  const { host, port } = splitAddress(address);
  if (port === undefined) return Promise.resolve("unknown");
  return new Promise<Probe>((resolve) => {
    let done = false;
    const finish = (p: Probe) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(p);
    };
    const socket = tlsConnect({
      host,
      port,
      ALPNProtocols: ["h2"],
      rejectUnauthorized: false,
      ...(/^[\d.]+$|:/.test(host) ? {} : { servername: host }),
    });
    const timer = setTimeout(() => finish("unknown"), PROBE_TIMEOUT_MS);
    timer.unref();
    let secure = false;
    socket.once("secureConnect", () => {
      secure = true;
      // TLS 1.3 sends a missing client certificate's alert after the handshake: wait a moment for it.
      socket.once("data", () => finish("tls"));
      setTimeout(() => finish("tls"), 300).unref();
    });
    socket.once("error", (e: NodeJS.ErrnoException) => {
      const code = e.code ?? "";
      if (/CERTIFICATE_REQUIRED|HANDSHAKE_FAILURE|BAD_CERTIFICATE/.test(code)) finish("tls-wants-client-cert");
      else if (secure) finish("tls");
      else if (/WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG|RECORD_LAYER_FAILURE/.test(code)) finish("not-tls");
      else finish("unknown");
    });
    socket.once("close", () => finish(secure ? "tls" : "unknown"));
  });
}

function splitAddress(address: string): { host: string; port: number | undefined } {
  const target = address.replace(/^dns:(\/\/[^/]*\/)?/, "");
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(target);
  if (!m) return { host: target, port: undefined };
  return { host: (m[1] ?? m[2])!, port: Number(m[3]) };
}
