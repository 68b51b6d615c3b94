"""What a data plane can serve, and the host's capacity: refusals at request time, with Gcore's answers."""

from __future__ import annotations

import pytest

from lbaas.domain.capabilities import EVERYTHING, HAPROXY, Capabilities
from lbaas.errors import Forbidden, ValidationFailed


def test_haproxy_refuses_udp_and_the_checks_it_cannot_run_with_a_400_naming_it() -> None:
    for check, value in (
        (HAPROXY.check_listener_protocol, "UDP"),
        (HAPROXY.check_pool_protocol, "UDP"),
        (HAPROXY.check_monitor_type, "UDP-CONNECT"),
        (HAPROXY.check_monitor_type, "K8S"),
    ):
        with pytest.raises(ValidationFailed) as err:
            check(value)
        assert "haproxy" in err.value.message and value in err.value.message
    HAPROXY.check_listener_protocol("TERMINATED_HTTPS")
    HAPROXY.check_monitor_type("PING")
    EVERYTHING.check_listener_protocol("UDP")  # the emulator takes what Gcore takes


def test_capacity_is_gcores_403() -> None:
    host = Capabilities("haproxy", max_load_balancers=3, host_ram_mib=8192)
    host.check_capacity(lambda: 2)
    with pytest.raises(Forbidden) as err:
        host.check_capacity(lambda: 3)
    assert err.value.status_code == 403 and err.value.exception_class == "ForbiddenError"
    host.check_flavor("lb1-4-8")
    with pytest.raises(Forbidden):
        host.check_flavor("lb1-8-16")  # 16 GiB on an 8 GiB host
    EVERYTHING.check_capacity(lambda: 10**6)
    EVERYTHING.check_capacity(lambda: pytest.fail("no limit: nothing to count"))
    EVERYTHING.check_flavor("lb1-8-16")
