"""PATCH one load balancer with a seed-shaped body (rename + tag merge with a deletion, one transaction)."""

import json

import common

BODY = json.dumps({"name": "lb-renamed", "tags": {"k": "v", "gone": None}})


def request(t: common.Target) -> common.Request:
    return common.Request("PATCH", f"{common.LB_PATH}/{common.first_lb_id(t)}", BODY)


def check(body: dict) -> str | None:
    if body.get("name") != "lb-renamed":
        return f"PATCH did not rename: {str(body)[:200]}"
    return None


if __name__ == "__main__":
    common.print_line("PATCH /loadbalancers/1/1/{id}", common.measure(request, check))
