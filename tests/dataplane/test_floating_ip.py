"""A floating IP carries traffic too: attached, its address answers like the VIP; detached, it stops."""

from __future__ import annotations

import httpx

from tests.dataplane.conftest import DataPlane, simple_lb, wait_for


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_floating_ip_serves_while_attached(dataplane: DataPlane) -> None:
    client = dataplane.client()
    lb = simple_lb(client, [dataplane.backend("fip-a"), dataplane.backend("fip-b")], name="fip-lb", port=8090)
    fip = client.cloud.floating_ips.create_and_poll(port_id=lb.vip_port_id)
    assert fip.floating_ip_address != lb.vip_address
    url = f"http://{fip.floating_ip_address}:8090/"
    # an internal apply task binds the address
    wait_for(lambda: _answers(url), timeout=15, what="the floating IP to answer")
    assert _answers(f"http://{lb.vip_address}:8090/")
    client.cloud.floating_ips.unassign(fip.id)
    wait_for(lambda: not _answers(url), timeout=15, what="the detached floating IP to stop answering")
    assert _answers(f"http://{lb.vip_address}:8090/")
