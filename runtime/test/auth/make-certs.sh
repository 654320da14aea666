#!/usr/bin/env bash
# Makes throwaway certificates for the TLS tests (runtime/test/auth, cli/test/tls.test.ts)
# in DIR: a CA, a server certificate for localhost/127.0.0.1 and a client certificate signed
# by it (CN instance-a, with DNS and URI alternative names), a second client certificate of
# that CA (CN instance-b), and a second CA with its own client certificate (trusted by nobody).
# Usage: make-certs.sh DIR. Needs openssl (Debian's openssl package).
set -euo pipefail
command -v openssl >/dev/null || { echo "make-certs.sh needs openssl (scripts/ensure-test-deps.sh installs it)" >&2; exit 1; }
dir="$1"
mkdir -p "$dir"
cd "$dir"
ossl() { openssl "$@" 2>/dev/null; }

ca() { # name
  ossl req -x509 -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.pem" -days 2 -subj "/CN=grpcrouter test $1" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}
leaf() { # name ca cn extensions
  ossl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$3"
  printf '%s\n' "$4" > "$1.ext"
  ossl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -out "$1.pem" -days 2 -extfile "$1.ext"
  rm -f "$1.csr" "$1.ext"
}

ca ca
ca other-ca
leaf server ca localhost "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
leaf client ca "instance-a" "subjectAltName=DNS:instance-a.example,URI:spiffe://example/instance-a
extendedKeyUsage=clientAuth"
leaf client-b ca "instance-b" "extendedKeyUsage=clientAuth"
leaf other-client other-ca "instance-x" "extendedKeyUsage=clientAuth"
