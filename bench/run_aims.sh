#!/usr/bin/env bash
# The figures of issue 10, each ROUNDS times (default 3), recorded as JSON lines in $BENCH_JSON
# (default /tmp/lbaas-aims.jsonl, emptied first), then the table of medians (bench/medians.py).
#   bash bench/run_aims.sh            # SQLite: GET, PATCH, list at c1/c16 beside minimal (NORMAL and
#                                     # FULL) and bare; create -> FINISHED; GET c64 with 1 and 2 API
#                                     # processes; the same GET/PATCH/list on PostgreSQL; the
#                                     # PATCH with a new body every request (a real write each time)
# The SQLite and PostgreSQL lbaas databases are seeded once (10,000 LBs through the API) and kept
# for the rounds.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
ROUNDS=${ROUNDS:-3}
export BENCH_JSON=${BENCH_JSON:-/tmp/lbaas-aims.jsonl}
: >"$BENCH_JSON"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export BENCH_LBAAS_DB=${BENCH_LBAAS_DB:-$tmp/lbaas.sqlite}  # set: a database seeded before, kept
export BENCH_LBAAS_PG_DB="bench_lbaas_aims_$$"
nproc | xargs echo "nproc:"; grep -m1 'model name' /proc/cpuinfo
for _ in $(seq "$ROUNDS"); do
  for s in bench_get bench_patch bench_list bench_create; do
    timeout 1800 "$PY" "bench/$s.py"
  done
  BENCH_PATCH=changing BENCH_TARGETS=lbaas,minimal,minimal-full timeout 1800 "$PY" bench/bench_patch.py
  BENCH_CONNECTIONS=64 BENCH_TARGETS=lbaas,minimal "$PY" bench/bench_get.py
  BENCH_CONNECTIONS=64 BENCH_TARGETS=lbaas BENCH_API_PROCESSES=2 "$PY" bench/bench_get.py
  for s in bench_get bench_patch bench_list; do
    BENCH_DB=postgresql BENCH_TARGETS=lbaas,minimal-pg timeout 1800 "$PY" "bench/$s.py"
  done
  # PostgreSQL writes what those changed to disk in a checkpoint of its own, later: flush it now, so
  # that its writes cannot fall into the next round's SQLite fsyncs. (Hygiene, not a proven cause:
  # create -> FINISHED reads 4-7 ms alone and 6-11 ms inside this script, in the first round too.)
  psql -q -h 127.0.0.1 -U postgres -d test -c "CHECKPOINT" || true
done
psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE IF EXISTS \"$BENCH_LBAAS_PG_DB\" WITH (FORCE)" || true
"$PY" bench/medians.py "$BENCH_JSON"
