"""The median of each figure over several runs recorded with BENCH_JSON (bench/common.record).

    BENCH_JSON=/tmp/runs.jsonl bash bench/run_aims.sh   # each figure 3 times
    .venv/bin/python bench/medians.py /tmp/runs.jsonl   # a markdown table, medians of the runs

For every figure and connection count: each target's median req/s (and its p50 / p99), and
lbaas's ratio to each baseline computed from the medians; the number of runs is shown.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict


def main(path: str) -> None:
    runs: dict[tuple, list[dict]] = defaultdict(list)
    with open(path) as fh:
        for line in fh:
            rec = json.loads(line)
            runs[(rec["figure"], rec["db"], rec["api_processes"])].append(rec["results"])
    print(
        "| figure | db | API procs | conns | runs | lbaas req/s (p50 / p99 ms) | baselines req/s | ratios |"
    )
    print("|---|---|---:|---:|---:|---:|---|---|")
    for (figure, db, procs), results in runs.items():
        conns = sorted({c for r in results for t in r.values() if t for c in t}, key=int)
        for c in conns:
            med: dict[str, dict[str, float]] = {}
            for target in results[0]:
                vals = [r[target][c] for r in results if r.get(target) and c in r[target]]
                if vals:
                    med[target] = {k: statistics.median(v[k] for v in vals) for k in vals[0]}
            n = sum(1 for r in results if any(t and c in t for t in r.values()))  # runs at c
            lb = med.get("lbaas", {})
            if lb and "rps" not in lb:  # a latency figure (create -> FINISHED)
                cell = " / ".join(f"{k} {v:.2f} ms" for k, v in lb.items())
                print(f"| {figure} | {db} | {procs} | {c} | {n} | {cell} | – | – |")
                continue
            base = ", ".join(f"{t} {v['rps']:,.0f}" for t, v in med.items() if t != "lbaas")
            if not lb:
                print(f"| {figure} | {db} | {procs} | {c} | {n} | – | {base} | – |")
                continue
            ratio = ", ".join(f"/{t} {lb['rps'] / v['rps']:.2f}" for t, v in med.items() if t != "lbaas")
            print(
                f"| {figure} | {db} | {procs} | {c} | {n} | "
                f"{lb['rps']:,.0f} ({lb['p50']:.2f} / {lb['p99']:.2f}) | {base} | {ratio} |"
            )


if __name__ == "__main__":
    main(sys.argv[1])
