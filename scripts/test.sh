#!/usr/bin/env bash
# Run the whole test suite: SQLite and PostgreSQL (started here if it is installed but down), and,
# without arguments, the examples/ suite against the emulator first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --test
if command -v pg_ctlcluster >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "test: starting PostgreSQL" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
if [[ $# -eq 0 ]]; then
  # The user-side example suite, through the shipped pytest plugin (docs/emulator.md).
  .venv/bin/python -m pytest -q -p lbaas.testing examples
fi
exec .venv/bin/python -m pytest -q "$@"
