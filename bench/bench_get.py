"""GET one load balancer by id (one SELECT + tags, APIKey auth): lbaas vs bare ASGI vs minimal app."""

import common


def request(t: common.Target) -> common.Request:
    return common.Request("GET", f"{common.LB_PATH}/{common.first_lb_id(t)}")


def check(body: dict) -> str | None:
    return None if "id" in body and "tags_v2" in body else f"not a load balancer: {str(body)[:200]}"


if __name__ == "__main__":
    common.print_line("GET /loadbalancers/1/1/{id}", common.measure(request, check))
