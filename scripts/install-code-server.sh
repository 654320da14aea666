#!/usr/bin/env bash
# A real VS Code for the extension's end-to-end tests: code-server 4.99.4 (VS Code 1.99, runs
# on Node 20), installed from the npm registry and Debian's packages only, so it works on CI
# machines that reach nothing else. Cached; prints the code-server executable's path last.
#
#   usage: scripts/install-code-server.sh [DIR]   (default: $HOME/.cache/grpcrouter-code-server)
set -euo pipefail
version=4.99.4
dir=${1:-${HOME}/.cache/grpcrouter-code-server}
bin="$dir/node_modules/.bin/code-server"
if [ -x "$bin" ] && [ -f "$dir/.done-$version" ]; then echo "$bin"; exit 0; fi

# Headers and a compiler for code-server's native modules (node-gyp), ripgrep for its search,
# chromium to drive it. Retries, the dpkg lock and sudo: see apt-install.sh.
bash "$(cd "$(dirname "$0")" && pwd)/apt-install.sh" --with-recommends \
  build-essential python3 pkg-config libx11-dev libxkbfile-dev libsecret-1-dev libkrb5-dev ripgrep chromium

# @vscode/ripgrep would download its own rg from GitHub; it first looks in a cache folder under
# the OS temp dir, so seed that cache with Debian's rg for the versions code-server may use.
seed=$(mktemp -d)
cp "$(command -v rg)" "$seed/rg"
tar -czf "$seed/rg.tar.gz" -C "$seed" rg
tmp_root=$(node -p 'require("node:os").tmpdir()')
for rgver in 1.15.9 1.15.10 1.15.11 1.15.12 1.15.13 1.15.14 1.16.0 1.16.1; do
  mkdir -p "$tmp_root/vscode-ripgrep-cache-$rgver"
  cp "$seed/rg.tar.gz" "$tmp_root/vscode-ripgrep-cache-$rgver/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz"
done
rm -rf "$seed"

mkdir -p "$dir"
cd "$dir"
[ -f package.json ] || printf '{ "name": "grpcrouter-code-server", "private": true }\n' > package.json
# As root, code-server's postinstall needs unsafe-perm; node-pty's build runs npx node-gyp,
# which must not stop to ask.
# The registry or network may fail transiently on a fresh machine: three tries.
for attempt in 1 2 3; do
  if npm_config_yes=true npm_config_unsafe_perm=true \
    npm install --no-audit --no-fund --loglevel=error "code-server@$version" >&2; then
    break
  fi
  [ "$attempt" = 3 ] && { echo "npm install code-server@$version failed 3 times" >&2; exit 1; }
  echo "npm install code-server@$version failed (attempt $attempt of 3); retrying" >&2
  sleep 10
done
pty="$dir/node_modules/code-server/lib/vscode/node_modules/node-pty/build/Release/pty.node"
[ -f "$pty" ] || { echo "code-server installed, but its native modules did not build ($pty missing)" >&2; exit 1; }
touch "$dir/.done-$version"
echo "$bin"
