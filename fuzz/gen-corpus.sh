#!/usr/bin/env bash
# Writes the seed corpora of every fuzz target into fuzz/corpus/<target>/ (gitignored):
# certificates, keys, PKCS#12 files, DH parameters and an OCSP response made here and now
# with the `openssl` command, plus hand-written action sequences for the structured
# targets. Keys live in a temp dir that is deleted on exit; nothing here is committed.
set -euo pipefail
cd "$(dirname "$0")"

command -v openssl >/dev/null || { echo "gen-corpus: the openssl command is needed" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=fuzz # the passphrase fuzz_targets/parsers.rs tries

for t in cert_parse parsers core_pair verify_differential; do mkdir -p "corpus/$t"; done
o() { openssl "$@" 2>/dev/null; }

# --- keys ------------------------------------------------------------------------------
o genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$tmp/rsa.pem"
o genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/p256.pem"
o genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$tmp/p384.pem"
o genpkey -algorithm ED25519 -out "$tmp/ed25519.pem"

# --- certificates: a CA, a leaf with many extensions, self-signed ones of each key -------
cat >"$tmp/ext.cnf" <<'CNF'
[ca]
basicConstraints=critical,CA:TRUE,pathlen:1
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
nameConstraints=permitted;DNS:localhost,permitted;IP:127.0.0.0/255.0.0.0
[leaf]
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:localhost,DNS:*.localhost,IP:127.0.0.1,IP:::1,email:a@example.com,URI:https://localhost/
authorityKeyIdentifier=keyid,issuer
authorityInfoAccess=OCSP;URI:http://ocsp.localhost/,caIssuers;URI:http://ca.localhost/ca.der
crlDistributionPoints=URI:http://crl.localhost/ca.crl
certificatePolicies=2.23.140.1.2.1,1.3.6.1.4.1.99999.1
1.2.3.4.5=critical,ASN1:UTF8String:unknown critical extension
[plain]
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost
CNF
o req -x509 -new -key "$tmp/p256.pem" -subj "/C=DE/O=Fuzz/OU=CA/CN=Fuzz CA" -days 3650 \
  -extensions ca -config "$tmp/ext.cnf" -out "$tmp/ca.pem" -set_serial 1
o req -new -key "$tmp/rsa.pem" -subj "/C=DE/ST=Berlin/L=Berlin/O=Fuzz/CN=localhost/emailAddress=a@example.com" \
  -out "$tmp/leaf.csr"
o x509 -req -in "$tmp/leaf.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/p256.pem" -days 365 \
  -extfile "$tmp/ext.cnf" -extensions leaf -set_serial 0x0123456789abcdef0123 -out "$tmp/leaf.pem"
# A leaf that verifies (for "localhost", under the CA): the OCSP seeds are about it.
o req -new -key "$tmp/p256.pem" -subj "/CN=localhost" -out "$tmp/plain.csr"
o x509 -req -in "$tmp/plain.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/p256.pem" -days 365 \
  -extfile "$tmp/ext.cnf" -extensions plain -set_serial 77 -out "$tmp/plain.pem"
# A version 1 certificate (no extensions).
o x509 -req -in "$tmp/leaf.csr" -signkey "$tmp/rsa.pem" -days 30 -out "$tmp/v1.pem"
for k in rsa p384 ed25519; do
  o req -x509 -new -key "$tmp/$k.pem" -subj "/CN=self-signed $k" -days 30 -out "$tmp/self-$k.pem"
done

certs="ca leaf plain v1 self-rsa self-p384 self-ed25519"
for c in $certs; do
  o x509 -in "$tmp/$c.pem" -outform DER -out "corpus/cert_parse/$c.der"
done

# --- parsers: first byte selects the parser (see fuzz_targets/parsers.rs) ---------------
seed() { # seed <selector> <name> <file>
  { printf "\\$(printf %03o "$1")"; cat "$3"; } >"corpus/parsers/$2"
}
for k in rsa p256 p384 ed25519; do
  seed 0 "key-$k.pem" "$tmp/$k.pem"
  o pkey -in "$tmp/$k.pem" -outform DER -out "$tmp/$k.der"
  seed 2 "key-$k.der" "$tmp/$k.der"
  o pkey -in "$tmp/$k.pem" -pubout -outform DER -out "$tmp/$k.pub.der"
  seed 3 "spki-$k.der" "$tmp/$k.pub.der"
  o pkcs8 -topk8 -in "$tmp/$k.pem" -v2 aes-256-cbc -passout "pass:$pass" -out "$tmp/$k.p8.pem"
  seed 1 "key-$k-pkcs8-aes.pem" "$tmp/$k.p8.pem"
  o pkcs8 -topk8 -in "$tmp/$k.pem" -v2 aes-128-cbc -v2prf hmacWithSHA1 -iter 1000 \
    -passout "pass:$pass" -outform DER -out "$tmp/$k.p8.der"
  seed 1 "key-$k-pkcs8-aes.der" "$tmp/$k.p8.der"
done
o pkcs8 -topk8 -in "$tmp/p256.pem" -scrypt -passout "pass:$pass" -out "$tmp/scrypt.pem" &&
  seed 1 "key-p256-scrypt.pem" "$tmp/scrypt.pem"
o rsa -in "$tmp/rsa.pem" -traditional -out "$tmp/rsa-pkcs1.pem" && seed 0 key-rsa-pkcs1.pem "$tmp/rsa-pkcs1.pem"
o rsa -in "$tmp/rsa.pem" -traditional -aes128 -passout "pass:$pass" -out "$tmp/rsa-dek.pem" &&
  seed 1 key-rsa-dek-info.pem "$tmp/rsa-dek.pem"
o ec -in "$tmp/p256.pem" -out "$tmp/sec1.pem" && seed 0 key-p256-sec1.pem "$tmp/sec1.pem"
o ec -in "$tmp/p256.pem" -des3 -passout "pass:$pass" -out "$tmp/sec1-des3.pem" &&
  seed 1 key-p256-sec1-des3.pem "$tmp/sec1-des3.pem"

cat "$tmp/leaf.pem" "$tmp/ca.pem" >"$tmp/chain.pem"
o pkcs12 -export -inkey "$tmp/rsa.pem" -in "$tmp/leaf.pem" -certfile "$tmp/ca.pem" \
  -passout "pass:$pass" -out "$tmp/aes.p12" && seed 4 bundle-aes.p12 "$tmp/aes.p12"
o pkcs12 -export -legacy -inkey "$tmp/rsa.pem" -in "$tmp/leaf.pem" -certfile "$tmp/ca.pem" \
  -passout "pass:$pass" -out "$tmp/legacy.p12" && seed 4 bundle-legacy.p12 "$tmp/legacy.p12"
o pkcs12 -export -inkey "$tmp/p256.pem" -in "$tmp/ca.pem" -passout pass: -out "$tmp/empty.p12" &&
  seed 5 bundle-empty-pass.p12 "$tmp/empty.p12"
seed 6 chain.pem "$tmp/chain.pem"
seed 7 leaf.pem "$tmp/leaf.pem"
seed 7 leaf.der "corpus/cert_parse/leaf.der"

o genpkey -genparam -algorithm DH -pkeyopt dh_param:ffdhe2048 -out "$tmp/ffdhe.pem"
seed 8 dh-ffdhe2048.pem "$tmp/ffdhe.pem"
o dhparam -in "$tmp/ffdhe.pem" -outform DER -out "$tmp/ffdhe.der" && seed 8 dh-ffdhe2048.der "$tmp/ffdhe.der"
o dhparam -out "$tmp/dh512.pem" 512 && seed 8 dh-512.pem "$tmp/dh512.pem"

# OCSP (selector 9): <now: 8 bytes BE> <u16 BE length> <leaf DER> <u16 BE length>
# <issuer DER> <response DER>; the response is about the plain leaf, signed by the CA.
u16() { printf "\\$(printf %03o $(($1 >> 8)))\\$(printf %03o $(($1 & 255)))"; }
serial=$(o x509 -in "$tmp/plain.pem" -noout -serial | cut -d= -f2)
subject=$(o x509 -in "$tmp/plain.pem" -noout -subject -nameopt compat | sed 's/^subject=//')
for status in V R; do
  if [ "$status" = R ]; then revoked="$(date -u +%y%m%d%H%M%SZ),keyCompromise"; else revoked=""; fi
  printf '%s\t%s\t%s\t%s\tunknown\t%s\n' "$status" 351231235959Z "$revoked" "$serial" "$subject" \
    >"$tmp/index.txt"
  if o ocsp -issuer "$tmp/ca.pem" -cert "$tmp/plain.pem" -reqout "$tmp/req.der" -no_nonce &&
    o ocsp -index "$tmp/index.txt" -rsigner "$tmp/ca.pem" -rkey "$tmp/p256.pem" -CA "$tmp/ca.pem" \
      -reqin "$tmp/req.der" -respout "$tmp/resp.der" -ndays 7; then
    o x509 -in "$tmp/ca.pem" -outform DER -out "$tmp/ca.der"
    {
      printf '\011' # selector 9
      now=$(date -u +%s)
      for shift in 56 48 40 32 24 16 8 0; do printf "\\$(printf %03o $(((now >> shift) & 255)))"; done
      u16 "$(wc -c <corpus/cert_parse/plain.der)"
      cat corpus/cert_parse/plain.der
      u16 "$(wc -c <"$tmp/ca.der")"
      cat "$tmp/ca.der"
      cat "$tmp/resp.der"
    } >"corpus/parsers/ocsp-$status.bin"
  fi
done

# --- core_pair: <setup> <actions...> (see fuzz_targets/core_pair.rs for the codes) -------
bytes() { # bytes <file> <decimal bytes...>
  local f=$1; shift
  for b in "$@"; do printf "\\$(printf %03o "$b")"; done >"corpus/core_pair/$f"
}
bytes handshake-data   0 2 2 2 2 9 10 2 2 11 11
bytes untrusted        1 2 2 2 2 11 9 2 11
bytes untrusted-ignore 1 2 5 2 2 2 9 10 2 11 12 2 2 2 11
bytes pause-resume     5 2 2 2 6 5 6 2 2 10 2 11
bytes pause-abort      5 2 2 2 7 2 11
bytes wrong-name       2 2 2 2 10 2 11
bytes tamper           0 0 4 0 10 0 7 1 4 1 20 0 1 2 2 11
bytes reconnect        0 2 2 12 2 2 10 2 11 13 12 2 2

# --- verify_differential: <anchors u16> <host> <time> <depth> <len-1> <chain...> <target>
# then, for the target: <tree ops> (<op> <u16> <u16> <byte>)* <resign> [<key>] <raw ops> ...
vbytes() {
  local f=$1; shift
  for b in "$@"; do printf "\\$(printf %03o "$b")"; done >"corpus/verify_differential/$f"
}
vbytes leaf-inter-root      1 0 0 0 0 1 2 1 2
vbytes leaf-by-root         1 0 0 0 0 0 3 1
vbytes self-signed-anchor  16 0 0 0 0 0 4 1
vbytes kcs-intermediate     1 0 0 0 0 1 6 5 2
vbytes other-root           1 0 0 0 0 1 8 7 2
vbytes no-san-cn            1 0 0 0 0 1 9 1 2
vbytes expired              1 0 0 127 0 1 2 1 2
vbytes mutate-resign        1 0 0 0 0 1 2 1 0 1 3 40 0 0 0 5 1 0
vbytes mutate-transplant    1 0 0 0 0 1 2 1 0 2 2 30 0 12 0 4 0 60 0 1 1 0
vbytes mutate-raw           1 0 0 0 0 1 2 1 1 0 0 1 0 100 0 7

echo "gen-corpus: seeds written to fuzz/corpus/<target>/"
