"""A first end-to-end pass through the SDK, on both backends."""

from __future__ import annotations


def test_create_get_patch_delete(client) -> None:
    lb = client.cloud.load_balancers.create_and_poll(name="lb-smoke", tags={"env": "prod"})
    assert lb.provisioning_status == "ACTIVE"
    assert lb.operating_status == "ONLINE"
    assert lb.vip_address.startswith("127.1.")
    patched = client.cloud.load_balancers.update(lb.id, name="lb-renamed", tags={"env": None, "team": "a"})
    assert patched.name == "lb-renamed"
    assert [(t.key, t.value) for t in patched.tags_v2] == [("team", "a")]
    client.cloud.load_balancers.delete_and_poll(lb.id)
    assert client.cloud.load_balancers.list().count == 0


async def test_async_client(aclient) -> None:
    lb = await aclient.cloud.load_balancers.create_and_poll(name="lb-async")
    got = await aclient.cloud.load_balancers.get(lb.id)
    assert got.id == lb.id and got.provisioning_status == "ACTIVE"
