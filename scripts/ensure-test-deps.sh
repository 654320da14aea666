#!/usr/bin/env bash
# Installs what the tests drive for real and npm cannot bring: Debian's chromium (browser
# tests), nghttp2-client (h2load, for the benchmark), python3-grpcio (gRPC C-core: a server
# and client in another language for `grpcrouter bridge`), openssl (throwaway certificates for
# the TLS tests), curl (the JSON-over-HTTP/1.1 tests) and code-server (a real VS Code, from scripts/install-code-server.sh).
# Idempotent and quiet when all is there.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# Retries, the dpkg lock, sudo and a clear message when not root: see apt-install.sh.
bash "$here/apt-install.sh" chromium nghttp2-client python3-grpcio openssl curl
# The browser tests launch this exact path (Debian's chromium; Ubuntu's is a snap stub).
[ -x /usr/bin/chromium ] || { echo "/usr/bin/chromium is missing although the chromium package is installed" >&2; exit 1; }

# code-server (VS Code 1.99) for the extension's end-to-end tests; the installer is idempotent
# and prints its path, which extension/test/codeServer.ts asks it for again.
installer="$here/install-code-server.sh"
if [ -z "${GRPCROUTER_CODE_SERVER:-}" ]; then
  bash "$installer" >/dev/null || { echo "install-code-server.sh failed" >&2; exit 1; }
fi
