#!/usr/bin/env bash
# Mints the demo PKI for docker-compose's sidecar profile into ./pki:
# a CA for the server, a CA for clients, the server certificate (web,
# localhost) and a client certificate (client.p12, no password) to try with:
#   curl --cacert pki/server-ca.crt --cert pki/client.crt --key pki/client.key \
#        --resolve web:8443:127.0.0.1 https://web:8443/
# Keys are made here, on your machine; nothing secret is shipped.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p pki && cd pki
ca() { # name subject
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
		-subj "$2" -keyout "$1.key" -out "$1.crt" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}
leaf() { # name subject ca eku [san]
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$2" -keyout "$1.key" -out "$1.csr"
	{ echo "keyUsage=critical,digitalSignature"; echo "extendedKeyUsage=$4"; [ -n "${5:-}" ] && echo "subjectAltName=$5"; } > "$1.ext"
	openssl x509 -req -in "$1.csr" -CA "$3.crt" -CAkey "$3.key" -CAcreateserial -days 90 -extfile "$1.ext" -out "$1.crt"
	rm -f "$1.csr" "$1.ext"
}
ca server-ca "/O=certlens demo/CN=certlens demo server CA"
ca client-ca "/O=certlens demo/CN=certlens demo client CA"
leaf web "/CN=web" server-ca serverAuth "DNS:web,DNS:localhost,IP:127.0.0.1"
leaf client "/CN=demo user" client-ca clientAuth
openssl pkcs12 -export -passout pass: -inkey client.key -in client.crt -certfile client-ca.crt -out client.p12
chmod 600 ./*.key client.p12
echo "demo PKI in $(pwd)"
