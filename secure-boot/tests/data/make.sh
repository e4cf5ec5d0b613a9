#!/bin/bash
# Regenerates the Secure Boot test fixtures in this directory (openssl and
# sbsigntool, Debian packages `openssl` and `sbsigntool`):
#   unsigned.efi       tests/efi-apps `hello` (a 7 KB EFI application)
#   db-ca.der          self-signed test root CA (the db certificate)
#   intermediate.der   intermediate CA signed by db-ca
#   signer.der         leaf signed by db-ca;        signed.efi = unsigned.efi signed by it
#   chain-signer.der   leaf signed by intermediate; chain.efi  = signed by it, intermediate added
#   other-ca.der       an unrelated self-signed CA (the "wrong CA")
#   rogue.efi          signed by a leaf that signer (not a CA) issued, signer carried
#   payload.bin        bytes an EFI_VARIABLE_AUTHENTICATION_2 would cover
#   payload.p7         detached CMS SignedData of payload.bin by signer (ContentInfo, signed attributes)
#   payload-noattr.p7  the same without signed attributes
# The keys are thrown away; every run makes new ones (the tests depend only
# on the relations above).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

app="$root/tests/efi-apps/target/x86_64-unknown-uefi/release/hello.efi"
if [ ! -f "$app" ]; then
    (cd "$root/tests/efi-apps" && cargo build --release -p hello --target x86_64-unknown-uefi)
fi
cp "$app" "$here/unsigned.efi"

ext() { printf '%s\n' "$@" > ext.cnf; }
ca_ext() { ext "basicConstraints=critical,CA:TRUE" "keyUsage=critical,keyCertSign,cRLSign" "subjectKeyIdentifier=hash"; }
leaf_ext() { ext "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" "extendedKeyUsage=codeSigning" "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid"; }

selfsigned() { # name CN
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -subj "/CN=$2" \
        -keyout "$1.key" -out "$1.pem" -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}
issue() { # name CN issuer kind
    openssl req -new -newkey rsa:2048 -nodes -subj "/CN=$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
    if [ "$4" = ca ]; then ca_ext; else leaf_ext; fi
    openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -set_serial "0x$(openssl rand -hex 8)" \
        -sha256 -days 3650 -extfile ext.cnf -out "$1.pem" 2>/dev/null
}

selfsigned db-ca "vmfw test db CA"
selfsigned other-ca "vmfw test unrelated CA"
issue intermediate "vmfw test intermediate CA" db-ca ca
issue signer "vmfw test signer" db-ca leaf
issue chain-signer "vmfw test chain signer" intermediate leaf

sbsign --key signer.key --cert signer.pem --output signed.efi "$here/unsigned.efi" 2>/dev/null
sbsign --key chain-signer.key --cert chain-signer.pem --addcert intermediate.pem \
    --output chain.efi "$here/unsigned.efi" 2>/dev/null
# A "certificate" issued by the signer leaf (not a CA): an image signed
# with it, the leaf added as if it were an intermediate, must be refused.
issue rogue "vmfw test rogue signer" signer leaf
sbsign --key rogue.key --cert rogue.pem --addcert signer.pem --output rogue.efi \
    "$here/unsigned.efi" 2>/dev/null
sbverify --cert db-ca.pem signed.efi >/dev/null
sbverify --cert db-ca.pem chain.efi >/dev/null

head -c 300 /dev/urandom > payload.bin
openssl cms -sign -binary -md sha256 -in payload.bin -signer signer.pem -inkey signer.key \
    -outform DER -out payload.p7
openssl cms -sign -binary -md sha256 -noattr -in payload.bin -signer signer.pem -inkey signer.key \
    -outform DER -out payload-noattr.p7

for c in db-ca other-ca intermediate signer chain-signer; do
    openssl x509 -in "$c.pem" -outform DER -out "$here/$c.der"
done
cp signed.efi chain.efi rogue.efi payload.bin payload.p7 payload-noattr.p7 "$here/"
echo "fixtures written to $here"
