#!/usr/bin/env bash
# Installs what the tests drive for real and npm cannot bring: Debian's chromium (browser
# tests), nghttp2-client (h2load, for the benchmark), python3-grpcio (gRPC C-core: a server
# and client in another language for `grpcrouter bridge`), openssl (throwaway certificates for
# the TLS tests) and code-server (a real VS Code, from scripts/install-code-server.sh).
# Idempotent and quiet when all is there.
set -euo pipefail
need=()
for p in chromium nghttp2-client python3-grpcio openssl; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "The tests need Debian packages: ${need[*]}. Install them (sudo apt-get install ${need[*]}) and run again." >&2
    exit 1
  fi
  echo "installing ${need[*]} (once)…" >&2
  apt-get update >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >/dev/null
fi

# code-server (VS Code 1.99) for the extension's end-to-end tests; the installer is idempotent
# and prints its path, which extension/test/codeServer.ts asks it for again.
installer="$(cd "$(dirname "$0")" && pwd)/install-code-server.sh"
if [ -z "${GRPCROUTER_CODE_SERVER:-}" ]; then
  bash "$installer" >/dev/null || { echo "install-code-server.sh failed" >&2; exit 1; }
fi
