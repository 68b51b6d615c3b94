"""The drift check's cache of applied snapshots (dataplane.all_applied with ``cache``): it gives
what a plain read gives, decodes only snapshots applied since the last call, and forgets LBs
that are gone."""

from __future__ import annotations

import pytest

from lbaas.db import dataplane
from tests.conftest import make_client, serve


@pytest.mark.parametrize("backend", ["sqlite", "pg"])
def test_the_cache_decodes_only_what_was_applied_since(backend, tmp_path, monkeypatch) -> None:
    decoded: list[str] = []
    real = dataplane._decode

    def counting(data):
        snapshot = real(data)
        decoded.append(snapshot.id)
        return snapshot

    with serve(backend, tmp_path) as srv:
        client = make_client(srv)
        lbs = [client.cloud.load_balancers.create_and_poll(name=f"cached-{i}") for i in range(3)]
        ids = {lb.id for lb in lbs}
        cache: dict = {}
        monkeypatch.setattr(dataplane, "_decode", counting)

        def both():
            with srv.db.read() as conn:
                plain = {s.id: s for s in dataplane.all_applied(conn) if s.id in ids}
                cached = {s.id: s for s in dataplane.all_applied(conn, cache) if s.id in ids}
            return plain, cached

        plain, cached = both()
        assert cached == plain and set(cached) == ids
        decoded.clear()
        assert both()[1] == plain
        assert not [i for i in decoded if i in ids and decoded.count(i) > 1]  # only the plain read decoded

        client.cloud.load_balancers.update(lbs[0].id, name="renamed-cached")  # the seed PATCH: no apply
        client.cloud.load_balancers.listeners.create_and_poll(  # a task that applies the LB again
            load_balancer_id=lbs[1].id, name="listener-1", protocol="TCP", protocol_port=80
        )
        decoded.clear()
        plain, cached = both()
        assert cached == plain
        again = [i for i in decoded if decoded.count(i) > 1]  # decoded by both reads: applied since
        assert lbs[1].id in again and lbs[0].id not in again and lbs[2].id not in again

        client.cloud.load_balancers.delete_and_poll(lbs[2].id)
        plain, cached = both()
        assert cached == plain and lbs[2].id not in cached and lbs[2].id not in cache
