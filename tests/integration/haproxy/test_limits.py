"""The descriptor arithmetic against HAProxy itself: the computed maxconn starts, one more does not."""

from __future__ import annotations

import pytest

from lbaas.providers.haproxy import limits
from lbaas.providers.haproxy.errors import StartFailed, UnsupportedHaproxy
from lbaas.providers.haproxy.runtime import StatsSocket
from tests.integration.haproxy.conftest import Lab, Server, config


@pytest.mark.parametrize(("nbthread", "checks", "splice"), [(1, 0, False), (2, 2, True)])
def test_max_maxconn_is_exactly_the_boundary(
    lab: Lab, backends, nbthread: int, checks: int, splice: bool
) -> None:
    hard = limits.fd_limit().hard
    if hard > 200_000:
        pytest.skip(f"descriptor limit {hard}: a maxconn that large would allocate too much here")
    a = backends("a")
    vip, port = lab.addresses.endpoint()
    shape = {"nbthread": nbthread, "listeners": 2, "checks": checks, "splice": splice}  # bind + stats socket
    best = limits.max_maxconn(hard, **shape)

    def cfg(lb, maxconn: int) -> str:
        servers = [
            Server(f"s{i}", a.address, a.port, "check inter 5s" if i < checks else "") for i in range(2)
        ]
        extra = ["option splice-auto"] if splice else []
        return config(lb, vip, port, servers, maxconn=maxconn, nbthread=nbthread, defaults=extra)

    lb = lab.lb()
    lab.deploy(lb, cfg(lb, best))
    info = StatsSocket(lb.stats_socket).show_info()
    assert int(info["Maxconn"]) == best
    assert int(info["Maxsock"]) == limits.fds_needed(best, **shape) <= hard
    lab.process(lb).stop(grace=1)

    other = lab.lb()
    with pytest.raises(StartFailed, match="Cannot raise FD limit"):
        lab.deploy(other, cfg(other, best + 1))


def test_installed_haproxy_is_supported(haproxy_bin: str) -> None:
    version = limits.haproxy_version(haproxy_bin)
    assert version.tuple >= (2, 6, 0)
    with pytest.raises(UnsupportedHaproxy, match="too old"):
        limits.haproxy_version(haproxy_bin, require=(99, 0))
    facts = limits.host_limits(haproxy_bin)
    assert facts.version == version and facts.cpus >= 1
