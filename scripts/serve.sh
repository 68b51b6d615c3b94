#!/usr/bin/env bash
# Set up lbaas (first run) and start it on 127.0.0.1:8080 with SQLite in ./.lbaas/.
# An admin key is generated into .lbaas/admin-api-key unless LBAAS_ADMIN_API_KEY is set.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
mkdir -p .lbaas
if [ -z "${LBAAS_ADMIN_API_KEY:-}" ]; then
  [ -s .lbaas/admin-api-key ] || .venv/bin/python -c 'import secrets; print("1$" + secrets.token_hex(32))' > .lbaas/admin-api-key
  LBAAS_ADMIN_API_KEY="$(cat .lbaas/admin-api-key)"; export LBAAS_ADMIN_API_KEY
  echo "serve: admin API key in .lbaas/admin-api-key" >&2
fi
if [ -z "${LBAAS_PROVIDER:-}" ]; then
  # The HAProxy data plane arrives with its own issue; until then the emulator serves.
  echo "serve: provider noop (the emulator): this version has no HAProxy data plane yet" >&2
  export LBAAS_PROVIDER=noop
fi
exec .venv/bin/lbaas serve "$@"
