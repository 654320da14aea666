#!/usr/bin/env bash
# Installs what the tests drive for real and npm cannot bring (Debian packages, one per line
# below with what needs it) and code-server, a real VS Code (scripts/install-code-server.sh).
# Idempotent and quiet when all is there.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
packages=(
  chromium        # the browser tests (dashboard, debug panel, code-server walks)
  nghttp2-client  # h2load, the benchmark's load generator
  python3-grpcio  # gRPC C-core: a server and client in another language for `grpcrouter bridge`
  openssl         # throwaway certificates for the TLS tests
  dnsmasq-base    # dnsmasq, a real DNS server on loopback for router discovery (no system service)
  bsdutils        # script(1): a pseudo-terminal for the CLI's progress line
  tinyproxy       # an HTTP CONNECT proxy between bridges and routers
  nginx           # an HTTP/1.1-only reverse proxy in front of the router (the WebSocket fallback)
  curl            # JSON over HTTP/1.1 to the router (the README's example)
  iproute2        # ip(8): a non-loopback address in a test's own network namespace (Admin actions)
  util-linux      # unshare(1): that network namespace
)
# Retries, the dpkg lock, sudo and a clear message when not root: see apt-install.sh.
bash "$here/apt-install.sh" "${packages[@]}"
# The browser tests launch this exact path (Debian's chromium; Ubuntu's is a snap stub).
[ -x /usr/bin/chromium ] || { echo "/usr/bin/chromium is missing although the chromium package is installed" >&2; exit 1; }

# code-server (VS Code 1.99) for the extension's end-to-end tests; the installer is idempotent
# and prints its path, which extension/test/code-server.ts asks it for again.
installer="$here/install-code-server.sh"
if [ -z "${GRPCROUTER_CODE_SERVER:-}" ]; then
  bash "$installer" >/dev/null || { echo "install-code-server.sh failed" >&2; exit 1; }
fi
