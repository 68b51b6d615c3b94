#!/usr/bin/env bash
# Set up lbaas (first run, with the gcore SDK) and start it on 127.0.0.1:8080 with SQLite in ./.lbaas/.
# Unless LBAAS_ADMIN_API_KEY is set, `lbaas serve` writes a generated admin key to .lbaas/admin-api-key
# (mode 0600) at first start and says where it is.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --sdk
if [ -z "${LBAAS_PROVIDER:-}" ]; then
  # The HAProxy data plane arrives with its own issue; until then the emulator serves.
  echo "serve: provider noop (the emulator): this version has no HAProxy data plane yet" >&2
  export LBAAS_PROVIDER=noop
fi
exec .venv/bin/lbaas serve "$@"
