"""PATCH one load balancer with a seed-shaped body (rename + tag merge with a deletion, one transaction).

    .venv/bin/python bench/bench_patch.py                       # the same body every time (the figure
                                                                # of issue 10)
    BENCH_PATCH=changing .venv/bin/python bench/bench_patch.py  # a new name and tag value every request

With the same body every time, the row only changes when the shown second of ``updated_at`` does:
SQLite leaves a row it would rewrite with identical bytes untouched, so most of those commits write
nothing and need no fsync, in lbaas as in the minimal app. ``changing`` makes every request a real
write, so every commit fsyncs where the durability setting asks for it (lbaas; minimal-full).
"""

import json
import os

import common

CHANGING = os.environ.get("BENCH_PATCH") == "changing"
BODY = json.dumps({"name": "lb-renamed", "tags": {"k": "v", "gone": None}})
# wrk calls request() for every request: the name and the tag's value carry a counter.
CHANGING_LUA = """
counter = 0
request = function()
  counter = counter + 1
  local body = '{"name": "lb-' .. counter .. '", "tags": {"k": "v' .. counter .. '", "gone": null}}'
  return wrk.format(nil, nil, nil, body)
end
"""


def request(t: common.Target) -> common.Request:
    path = f"{common.LB_PATH}/{common.first_lb_id(t)}"
    return common.Request("PATCH", path, BODY, CHANGING_LUA if CHANGING else "")


def check(body: dict) -> str | None:
    if body.get("name") != "lb-renamed":
        return f"PATCH did not rename: {str(body)[:200]}"
    return None


if __name__ == "__main__":
    figure = "PATCH /loadbalancers/1/1/{id}" + (", a new body each request" if CHANGING else "")
    common.print_line(figure, common.measure(request, check))
