#!/usr/bin/env bash
# Set up lbaas (first run, with the gcore SDK) and start it on 127.0.0.1:8080 with SQLite in ./.lbaas/.
# The data plane is HAProxy (installed here with apt-get when missing, with iputils-ping for PING
# monitors); where HAProxy cannot be had, the noop provider (the emulator) serves, and this says so.
# Unless LBAAS_ADMIN_API_KEY is set, `lbaas serve` writes a generated admin key to .lbaas/admin-api-key
# (mode 0600) at first start and says where it is.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --sdk
if [ -z "${LBAAS_PROVIDER:-}" ]; then
  if ! command -v haproxy >/dev/null || ! command -v ping >/dev/null; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    APT=(apt-get -o DPkg::Lock::Timeout=300)
    echo "serve: installing haproxy and iputils-ping with apt-get" >&2
    { $SUDO "${APT[@]}" update -qq && $SUDO "${APT[@]}" install -y -qq haproxy iputils-ping; } >/dev/null 2>&1 || true
  fi
  if .venv/bin/python -c 'from lbaas.providers.haproxy.limits import haproxy_version; haproxy_version()' 2>/dev/null; then
    export LBAAS_PROVIDER=haproxy
  else
    echo "serve: HAProxy >= 2.6 could not be installed; serving with the noop provider (the emulator: no traffic is carried)" >&2
    export LBAAS_PROVIDER=noop
  fi
fi
exec .venv/bin/lbaas serve "$@"
