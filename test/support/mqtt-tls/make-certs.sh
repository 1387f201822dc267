#!/usr/bin/env bash
# Regenerates the TLS fixtures of the MQTT tests (test-only keys, never used
# elsewhere): a CA, a broker certificate for localhost/127.0.0.1, a client
# certificate, and an unrelated CA. Valid from 2000 to 2100, so a CI clock that
# is off by years still accepts them. Needs openssl; the tests only read the files.
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/ca.cnf" <<CNF
[ ca ]
default_ca = test_ca
[ test_ca ]
dir = $work
database = $work/index.txt
new_certs_dir = $work
serial = $work/serial
default_md = sha256
policy = any
copy_extensions = none
[ any ]
commonName = supplied
[ v3_ca ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ server ]
basicConstraints = CA:FALSE
subjectAltName = DNS:localhost,IP:127.0.0.1
extendedKeyUsage = serverAuth
[ client ]
basicConstraints = CA:FALSE
extendedKeyUsage = clientAuth
CNF
sign() { # name subject extensions signer-cert signer-key [selfsign]
  openssl req -new -newkey rsa:2048 -nodes -keyout "$work/$1-key.pem" -out "$work/$1.csr" -subj "$2" 2>/dev/null
  : > "$work/index.txt"; echo 01 > "$work/serial"
  if [ "${6:-}" = selfsign ]; then
    openssl ca -batch -config "$work/ca.cnf" -selfsign -keyfile "$work/$1-key.pem" -in "$work/$1.csr" -out "$work/$1.pem" \
      -startdate 20000101000000Z -enddate 21000101000000Z -extensions "$3" -notext 2>/dev/null
  else
    openssl ca -batch -config "$work/ca.cnf" -cert "$4" -keyfile "$5" -in "$work/$1.csr" -out "$work/$1.pem" \
      -startdate 20000101000000Z -enddate 21000101000000Z -extensions "$3" -notext 2>/dev/null
  fi
}
sign ca "/CN=millstream test CA" v3_ca "" "" selfsign
sign server "/CN=localhost" server "$work/ca.pem" "$work/ca-key.pem"
sign client "/CN=gateway-7" client "$work/ca.pem" "$work/ca-key.pem"
sign other-ca "/CN=some other CA" v3_ca "" "" selfsign
cp "$work/ca.pem" "$work/server.pem" "$work/server-key.pem" "$work/client.pem" "$work/client-key.pem" "$work/other-ca.pem" .
