#!/usr/bin/env bash
# Run every bench script; each prints one line. Extra args (e.g. --baseline-only) are passed through.
# BENCH_SECONDS (default 5) sets the duration of each wrk run. The lbaas database is seeded once
# (10,000 LBs through the API) and shared by the scripts unless BENCH_LBAAS_DB is already set;
# bench_nested_create and bench_member_put always use a temp database of their own, unseeded.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
command -v wrk >/dev/null || { echo "wrk not found: apt-get update && apt-get install -y wrk" >&2; exit 1; }
if [[ -z "${BENCH_LBAAS_DB:-}" ]]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  export BENCH_LBAAS_DB="$tmp/lbaas.sqlite"
fi
nproc | xargs echo "nproc:"; grep -m1 'model name' /proc/cpuinfo
for s in bench_get bench_patch bench_list bench_create bench_nested_create bench_member_put bench_reset bench_controls_overhead; do
  timeout 1800 "$PY" "bench/$s.py" "$@"
done
