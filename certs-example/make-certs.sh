#!/usr/bin/env bash
# make-certs.sh - generate the EXAMPLE certificates that mlgate's dev mode and tests use.
#
#   bash certs-example/make-certs.sh <outdir> [days] [--force]
#
# THESE ARE EXAMPLES, NOT FOR PRODUCTION. The private keys in certs-example/ are committed to a public
# repository, so anybody can impersonate a server or client that uses them. Every certificate made here
# carries "NOT FOR PRODUCTION" in its subject, and mlgate's production configuration refuses them.
#
# What it makes in <outdir> (all keys EC P-256, PKCS#8 PEM; all certificates signed with SHA-256):
#   ca.crt / ca.key                          example CA, 10 years, CN "mlgate example CA (NOT FOR PRODUCTION)"
#   edge.crt / edge.key                      the gateway's HTTPS server cert  (serverAuth; localhost, 127.0.0.1, ::1)
#   node.crt / node.key                      an operationalization node's server cert
#                                            (serverAuth; localhost, node.mlgate.local, 127.0.0.1)
#   gateway-client.crt / gateway-client.key  the client cert the gateway presents to nodes (clientAuth; CN mlgate-gateway)
# [days] is the validity of the leaf certificates (default 3650, capped at the CA's 3650).
#
# The script refuses to touch an <outdir> that already holds ca.crt or ca.key unless --force is given;
# with --force it replaces the whole set (nothing is changed if generation fails half way).
#
# Making your own (production): use your organisation's PKI, or at least a CA whose key never leaves the
# machine that signs. The recipe below is the openssl equivalent of what this script does per leaf:
#   openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out my.key
#   openssl req -new -key my.key -subj "/CN=gateway.example.com" -out my.csr
#   printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n%s\n%s\n' \
#     'extendedKeyUsage=serverAuth' 'subjectAltName=DNS:gateway.example.com' > my.ext
#   openssl x509 -req -in my.csr -CA my-ca.crt -CAkey my-ca.key -set_serial "0x$(openssl rand -hex 16)" \
#     -days 397 -sha256 -extfile my.ext -out my.crt
# Then point mlgate's tls.* / upstream.* certificate settings at your files.
set -euo pipefail

usage() {
  echo "usage: bash $0 <outdir> [days] [--force]" >&2
  exit 2
}

force=0
args=()
for a in "$@"; do
  case "$a" in
    --force) force=1 ;;
    -h|--help) usage ;;
    -*) echo "make-certs: unknown option $a" >&2; usage ;;
    *) args+=("$a") ;;
  esac
done
[ "${#args[@]}" -ge 1 ] && [ "${#args[@]}" -le 2 ] || usage
outdir="${args[0]}"
ca_days=3650
days="${args[1]:-3650}"
if ! [[ "$days" =~ ^[1-9][0-9]{0,4}$ ]]; then
  echo "make-certs: days must be a positive integer, got '$days'" >&2
  exit 2
fi
if [ "$days" -gt "$ca_days" ]; then
  echo "make-certs: capping leaf validity at the CA's $ca_days days" >&2
  days=$ca_days
fi
command -v openssl >/dev/null || { echo "make-certs: openssl not found" >&2; exit 1; }

mkdir -p "$outdir"
if [ "$force" -ne 1 ] && { [ -e "$outdir/ca.crt" ] || [ -e "$outdir/ca.key" ]; }; then
  echo "make-certs: $outdir already holds an example CA (ca.crt/ca.key); refusing to overwrite it." >&2
  echo "make-certs: re-run with --force to replace the CA and every certificate signed by it." >&2
  exit 1
fi

# Build everything in a scratch directory, then move into place only when all of it succeeded.
work="$(mktemp -d "${TMPDIR:-/tmp}/mlgate-certs.XXXXXX")"
trap 'rm -rf "$work"' EXIT
umask 077

ORG="mlgate example (NOT FOR PRODUCTION)"

newkey() { # <name>
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -pkeyopt ec_param_enc:named_curve \
    -out "$work/$1.key" 2>/dev/null
}

serial() { # positive 128-bit serial (leading nibble 1-7)
  printf '0x%x%s' $((RANDOM % 7 + 1)) "$(openssl rand -hex 15)"
}

# --- CA ---------------------------------------------------------------------------------------------
newkey ca
cat > "$work/ca.ext" <<'EOF'
[ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF
openssl req -new -x509 -key "$work/ca.key" -sha256 -days "$ca_days" -set_serial "$(serial)" \
  -subj "/O=$ORG/CN=mlgate example CA (NOT FOR PRODUCTION)" \
  -config "$work/ca.ext" -extensions ca -out "$work/ca.crt"

# --- leaves -----------------------------------------------------------------------------------------
leaf() { # <name> <CN> <extendedKeyUsage> [subjectAltName]
  local name="$1" cn="$2" eku="$3" san="${4:-}"
  newkey "$name"
  openssl req -new -key "$work/$name.key" -subj "/O=$ORG/CN=$cn" -out "$work/$name.csr"
  {
    echo "[leaf]"
    echo "basicConstraints = critical, CA:FALSE"
    echo "keyUsage = critical, digitalSignature"
    echo "extendedKeyUsage = $eku"
    echo "subjectKeyIdentifier = hash"
    echo "authorityKeyIdentifier = keyid"
    if [ -n "$san" ]; then echo "subjectAltName = $san"; fi
  } > "$work/$name.ext"
  openssl x509 -req -in "$work/$name.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" \
    -set_serial "$(serial)" -days "$days" -sha256 \
    -extfile "$work/$name.ext" -extensions leaf -out "$work/$name.crt" 2>/dev/null
  openssl verify -CAfile "$work/ca.crt" "$work/$name.crt" >/dev/null
}

leaf edge "localhost" serverAuth "DNS:localhost, IP:127.0.0.1, IP:::1"
leaf node "node.mlgate.local" serverAuth "DNS:localhost, DNS:node.mlgate.local, IP:127.0.0.1"
leaf gateway-client "mlgate-gateway" clientAuth

# --- install ----------------------------------------------------------------------------------------
names=(ca edge node gateway-client)
for n in "${names[@]}"; do
  chmod 600 "$work/$n.key"
  chmod 644 "$work/$n.crt"
  mv -f "$work/$n.key" "$outdir/$n.key"
  mv -f "$work/$n.crt" "$outdir/$n.crt"
done

echo "make-certs: wrote EXAMPLE certificates (NOT FOR PRODUCTION) to $outdir (leaf validity $days days):"
for n in "${names[@]}"; do
  subj="$(openssl x509 -in "$outdir/$n.crt" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')"
  end="$(openssl x509 -in "$outdir/$n.crt" -noout -enddate | sed 's/^notAfter=//')"
  fp="$(openssl x509 -in "$outdir/$n.crt" -noout -fingerprint -sha256 | sed 's/^.*=//')"
  printf '  %-20s %s\n' "$n.crt" "$subj"
  printf '  %-20s until %s, sha256 %s\n' "" "$end" "$fp"
  printf '  %-20s EC P-256 private key (PKCS#8)\n' "$n.key"
done
