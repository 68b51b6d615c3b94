"""List one page of 100 out of 10,000 load balancers (ordered by created_at desc, id)."""

import os

import common

OFFSET = int(os.environ.get("BENCH_LIST_OFFSET", "0"))


def request(t: common.Target) -> common.Request:
    return common.Request("GET", f"{common.LB_PATH}?limit=100&offset={OFFSET}")


def check(body: dict) -> str | None:
    count, page = body.get("count", 0), len(body.get("results", []))
    if count < 10_000 or page != 100:
        return f"expected 100 of >= 10,000 LBs, got count={count} len={page}"
    return None


if __name__ == "__main__":
    common.print_line(f"LIST 100 of 10,000 (offset {OFFSET})", common.measure(request, check))
