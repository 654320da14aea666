#!/usr/bin/env bash
# Installs the Debian packages given as arguments that are not installed yet; quiet and quick
# when all are there. Made for fresh, shared CI machines:
#  - "installed" means dpkg's status is "install ok installed" (`dpkg -s` also succeeds for a
#    removed package whose config files remain);
#  - as root it runs apt-get itself; otherwise through `sudo -n` when that works without a
#    password; else it stops with the exact command to run;
#  - it waits up to 10 minutes for the dpkg lock (a fresh VM often runs unattended-upgrades
#    at boot) instead of failing at once;
#  - apt-get update and install are tried 3 times with a pause between (mirrors and the
#    network fail transiently); a failing update alone does not stop it, since the lists it
#    already has may well be enough to install from;
#  - apt's output is kept in a log and shown only when something fails.
#
#   usage: scripts/apt-install.sh [--with-recommends] PACKAGE...
set -euo pipefail
recommends=(--no-install-recommends)
if [ "${1:-}" = --with-recommends ]; then
  recommends=()
  shift
fi

missing=()
for p in "$@"; do
  [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "The tests need Debian packages that are missing: ${missing[*]}." >&2
  echo "Install them as root and run again: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

log=$(mktemp "${TMPDIR:-/tmp}/apt-install.XXXXXX.log")
trap 'rm -f "$log"' EXIT
apt=("${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)

# try WHAT CMD...: runs CMD up to 3 times, 10 s apart; returns CMD's last status.
try() {
  local what=$1 attempt status=0
  shift
  for attempt in 1 2 3; do
    if "$@" >>"$log" 2>&1; then return 0; else status=$?; fi
    echo "$what failed (attempt $attempt of 3, exit $status)" >&2
    [ "$attempt" = 3 ] || sleep 10
  done
  return "$status"
}

echo "installing Debian packages: ${missing[*]} (once)…" >&2
if ! try "apt-get update" "${apt[@]}" update; then
  echo "apt-get update keeps failing; installing from the package lists already on this machine" >&2
fi
if ! try "apt-get install ${missing[*]}" "${apt[@]}" install -y "${recommends[@]}" "${missing[@]}"; then
  echo "could not install ${missing[*]}; apt's output:" >&2
  tail -n 40 "$log" >&2
  exit 1
fi
