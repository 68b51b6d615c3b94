"""A number past 32 bits in a field with bounds of its own is refused with the field's bounds.

Bounds added to ``Int32`` are checked after its own, so ``protocol_port: 99999999999999999999``
read "less than or equal to 2147483647" while 70000 read "... 65535" (a new user's trial). The
fields with their own bounds now carry only those (``lbaas.api.params.NotBool``).
"""

from __future__ import annotations

import httpx
import pytest

HUGE = 99999999999999999999


@pytest.fixture
def http(server, project):
    with httpx.Client(base_url=server.url, headers={"Authorization": f"APIKey {project[1]}"}) as c:
        yield c, project[0]


@pytest.mark.parametrize("value", [HUGE, 70000])
def test_a_port_past_its_range_names_65535(http, value: int) -> None:
    c, pid = http
    body = {"name": "web", "listeners": [{"name": "http", "protocol": "HTTP", "protocol_port": value}]}
    r = c.post(f"/cloud/v1/loadbalancers/{pid}/1", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["invalid_fields"] == {
        "listeners.0.protocol_port": ["Input should be less than or equal to 65535"]
    }
    assert c.get(f"/cloud/v1/loadbalancers/{pid}/1").json()["count"] == 0


@pytest.mark.parametrize(("field", "low", "high"), [("weight", "1", "256"), ("protocol_port", "1", "65535")])
def test_member_numbers_name_their_own_bounds(http, field: str, low: str, high: str) -> None:
    c, pid = http
    member = {"address": "127.0.0.1", "protocol_port": 80, field: HUGE}
    pool = {"name": "pool", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", "members": [member]}
    body = {
        "name": "web",
        "listeners": [{"name": "http", "protocol": "HTTP", "protocol_port": 80, "pools": [pool]}],
    }
    r = c.post(f"/cloud/v1/loadbalancers/{pid}/1", json=body)
    assert r.status_code == 400, r.text
    assert f"less than or equal to {high}" in r.text and "2147483647" not in r.text
    member[field] = -HUGE
    r = c.post(f"/cloud/v1/loadbalancers/{pid}/1", json=body)
    assert r.status_code == 400 and f"greater than or equal to {low}" in r.text, r.text


def test_a_limit_past_64_bits_names_1000(http) -> None:
    c, pid = http
    r = c.get(f"/cloud/v1/loadbalancers/{pid}/1", params={"limit": HUGE})
    assert r.status_code == 400, r.text
    assert "less than or equal to 1000" in r.text and "9223372036854775807" not in r.text
