#!/usr/bin/env bash
# Makes the secrets every overlay's secretGenerator reads, the same in every region: the URL token
# key (tokens verify on every edge), the key edges sign their fetches with (the origin checks it),
# and the admin bearer token. Files are written under overlays/*/secrets/ (ignored by git), once:
# existing secrets are kept unless --force.
#
#   deploy/k8s/make-secrets.sh [--force] [OVERLAYS_DIR]
set -euo pipefail
force=0
if [[ "${1:-}" == --force ]]; then force=1; shift; fi
overlays="${1:-$(cd "$(dirname "$0")" && pwd)/overlays}"
[[ -d "$overlays" ]] || { echo "make-secrets: no folder $overlays" >&2; exit 1; }

secret() { head -c 48 /dev/urandom | base64 | tr -d '\n/+='; }
first=""
for dir in "$overlays"/*/; do
  [[ -f "$dir/kustomization.yaml" ]] || continue
  if [[ -z "$first" ]]; then
    first="$dir/secrets"
    if (( force )) || [[ ! -f "$first/edge.key" ]]; then
      mkdir -p "$first/token-keys"
      umask 077
      secret >"$first/token-keys/k1.key"
      secret >"$first/edge.key"
      secret >"$first/admin.token"
    fi
    continue
  fi
  mkdir -p "$dir/secrets"
  cp -R "$first/." "$dir/secrets/"
done
[[ -n "$first" ]] || { echo "make-secrets: no overlay in $overlays" >&2; exit 1; }
echo "secrets in $overlays/*/secrets (the same in every overlay)"
