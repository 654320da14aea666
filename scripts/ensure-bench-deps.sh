#!/usr/bin/env bash
# Installs what `npm run bench` drives and npm cannot bring: h2load (nghttp2-client, the C load
# generator), HAProxy and nginx, the C proxies the router is measured against, and tinyproxy, an
# HTTP CONNECT proxy on a bridge's way to its router. Idempotent
# and quiet when all is there; apt-install.sh handles sudo, the dpkg lock and retries.
# The bench runs its own haproxy and nginx with configs in a temporary folder; the system
# services Debian may start on install are not used.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bash "$here/apt-install.sh" nghttp2-client haproxy nginx tinyproxy
