"""Metrics over time on the real data plane: a sampler every second, traffic through HAProxy,
then POST .../metrics for a 1-hour window through the SDK."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.dataplane.conftest import DataPlane, haproxy_server, wait_for

PAD = 4000  # bytes of padding header per request: ingress well above egress


@pytest.fixture(scope="module")
def sampled() -> Iterator[DataPlane]:
    """lbaas with the haproxy provider, sampling every second, and reading every HAProxy's
    counters every 0.3 s: a sample's rates come from the totals the poller stored, and fresher
    totals put fewer bytes in the wrong sample (only ~4 s of traffic over two 3-s slots)."""
    with haproxy_server(metrics_interval=1, stats_interval=0.3) as dp:  # samples from fresh totals
        yield dp


def _epoch(t: str) -> float:
    return dt.datetime.strptime(t, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()


def _integral(results, field: str) -> float:
    """Bytes the entries account for: each rate (bits/s) times its entry's width, over 8."""
    width = _epoch(results[1].time) - _epoch(results[0].time)
    return sum(getattr(m, field) for m in results if getattr(m, field) is not None) * width / 8


def test_cpu_memory_and_traffic_rates_of_a_real_lb(sampled: DataPlane) -> None:
    if shutil.which("wrk") is None:
        pytest.fail("wrk is required (apt-get install wrk; .ci/run installs it)")
    backend = sampled.backend("metrics-0")
    client = sampled.client()
    lbs = client.cloud.load_balancers
    lb = lbs.create_and_poll(
        name="metrics-lb",
        listeners=[
            {
                "name": "http",
                "protocol": "HTTP",
                "protocol_port": 8080,
                "pools": [
                    {
                        "name": "metrics-pool",
                        "protocol": "HTTP",
                        "lb_algorithm": "ROUND_ROBIN",
                        "members": [backend.member],
                    }
                ],
            },
            # no pool: HAProxy answers 503 itself, as fast as wrk asks (CPU without a backend)
            {"name": "busy", "protocol": "HTTP", "protocol_port": 8081},
        ],
    )

    def window():
        return lbs.metrics.list(lb.id, time_interval=1, time_unit="hour").results

    def measured():
        return [m for m in window() if m.cpu_util is not None]

    # A first sample (before any traffic): the sampler's reading of this LB precedes the traffic
    first = wait_for(measured, timeout=10, what="a first sample of the new LB")
    assert all(m.network_bps_ingress == 0 for m in first if m.network_bps_ingress is not None)

    sent = 0
    with httpx.Client() as http:
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            assert (
                http.get(f"http://{lb.vip_address}:8080/", headers={"X-Pad": "x" * PAD}).text == "metrics-0"
            )
            sent += 1
    wrk = subprocess.run(
        ["wrk", "-t1", "-c4", "-d2s", f"http://{lb.vip_address}:8081/"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert wrk.returncode == 0 and "Non-2xx or 3xx responses" in wrk.stdout, wrk.stdout + wrk.stderr

    seen: dict[str, object] = {}

    def accounted():
        # the poller's totals (every 0.3 s) and the samples (every second) both catch up
        stats = lbs.get(lb.id, show_stats=True).stats
        results = window()
        rx, tx = _integral(results, "network_bps_ingress"), _integral(results, "network_bps_egress")
        seen.update(
            bytes_in=stats.bytes_in,
            bytes_out=stats.bytes_out,
            rx=rx,
            tx=tx,
            sent=sent * PAD,
            moving=[
                (m.time, m.network_bps_ingress, m.network_bps_egress)
                for m in results
                if m.network_bps_ingress
            ],
        )
        return (
            stats.bytes_in >= sent * PAD
            and 0.5 * stats.bytes_in <= rx <= 1.6 * stats.bytes_in
            and 0.5 * stats.bytes_out <= tx <= 1.6 * stats.bytes_out
            and results
        )

    # Ingress and egress account for the traffic: the rates over the window add up to the
    # bytes HAProxy counted (bits/s x seconds / 8). Not exactly: a 3-s slot's value is the average
    # over the seconds its samples measured, and with wrk saturating both cores the sampler's
    # readings come late or not at all, so a slot may have measured 1.75 s of its 3 (CI: 1.5x the
    # bytes; 4 in ~25 runs missed a 20 % tolerance). The bounds still catch a unit error (8x).
    try:
        results = wait_for(accounted, timeout=15, what="the samples to account for the traffic")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the last reading: {seen}") from None
    assert len(results) == 1200  # 3600 one-second samples, averaged by threes (at most 1440 entries)
    values = [m for m in results if m.cpu_util is not None]
    assert len(values) >= 2
    for m in values:
        assert 0.0 <= m.cpu_util <= 100.0
        # HAProxy's Pss is megabytes; the default flavor has 2 GiB
        assert 0.01 < m.memory_util < 10.0
        assert m.network_pps_ingress is None and m.network_pps_egress is None
    # wrk's thousands of requests a second keep HAProxy's one thread (lb1-1-2: 1 vCPU) busy
    assert max(m.cpu_util for m in values) > 5.0
    # bits/s: the padded requests make more than 8 x PAD bits in a second
    assert max(m.network_bps_ingress or 0 for m in values) > 8 * PAD
    lbs.delete(lb.id)
