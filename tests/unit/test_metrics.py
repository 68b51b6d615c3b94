"""The arithmetic of metrics samples and of the windows the API answers with."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lbaas.domain.metrics import MAX_POINTS, MIB, RETENTION_DAYS, Reading, cpus_for, sample, window

GIB2 = 2048  # lb1-1-2: 2 GiB


def test_cpu_is_cpu_time_over_interval_times_cpus() -> None:
    prev = Reading(100.0, cpu_seconds=10.0, memory_bytes=0)
    cur = Reading(160.0, cpu_seconds=25.0, memory_bytes=0)
    # 15 s of CPU over 60 s on 2 vCPUs (4 cores on the host): 12.5 %
    assert sample(prev, cur, vcpus=2, ram_mib=GIB2, host_cpus=4).cpu_util == pytest.approx(12.5)
    # the flavor's 8 vCPUs capped at the host's 2 cores: 15 / (60 x 2) = 12.5 %
    assert sample(prev, cur, vcpus=8, ram_mib=GIB2, host_cpus=2).cpu_util == pytest.approx(12.5)
    # 1 vCPU: 25 %
    assert sample(prev, cur, vcpus=1, ram_mib=GIB2, host_cpus=2).cpu_util == pytest.approx(25.0)


def test_cpu_is_clamped_to_0_100() -> None:
    prev = Reading(0.0, cpu_seconds=0.0, memory_bytes=0)
    busy = Reading(1.0, cpu_seconds=3.0, memory_bytes=0)  # 3 CPU-seconds in 1 s on 1 vCPU
    assert sample(prev, busy, vcpus=1, ram_mib=GIB2, host_cpus=4).cpu_util == 100.0
    back = Reading(1.0, cpu_seconds=-5.0, memory_bytes=0)
    assert sample(prev, back, vcpus=1, ram_mib=GIB2, host_cpus=4).cpu_util == 0.0


def test_a_new_generation_counts_all_its_cpu_time() -> None:
    prev = Reading(0.0, cpu_seconds=500.0, memory_bytes=0, generation="111:5")
    cur = Reading(10.0, cpu_seconds=2.0, memory_bytes=0, generation="222:900")
    assert sample(prev, cur, vcpus=1, ram_mib=GIB2, host_cpus=1).cpu_util == pytest.approx(20.0)
    same = Reading(10.0, cpu_seconds=502.0, memory_bytes=0, generation="111:5")
    assert sample(prev, same, vcpus=1, ram_mib=GIB2, host_cpus=1).cpu_util == pytest.approx(20.0)


def test_memory_is_the_mean_of_both_readings_over_flavor_ram() -> None:
    prev = Reading(0.0, 0.0, memory_bytes=100 * MIB)
    cur = Reading(60.0, 0.0, memory_bytes=300 * MIB)
    # mean 200 MiB of 4096 MiB
    assert sample(prev, cur, vcpus=2, ram_mib=4096, host_cpus=2).memory_util == pytest.approx(
        200 / 4096 * 100
    )


def test_rates_are_bits_per_second_of_the_byte_totals() -> None:
    prev = Reading(0.0, 0.0, 0, bytes_in=1_000, bytes_out=50_000)
    cur = Reading(4.0, 0.0, 0, bytes_in=9_000, bytes_out=50_000)
    s = sample(prev, cur, vcpus=1, ram_mib=GIB2, host_cpus=1)
    assert s.seconds == 4.0
    assert s.network_bps_ingress == pytest.approx(8_000 * 8 / 4)  # 16 kbit/s
    assert s.network_bps_egress == 0.0


def test_unmeasured_or_backwards_totals_give_no_rate() -> None:
    prev = Reading(0.0, 0.0, 0, bytes_in=None, bytes_out=10)
    cur = Reading(1.0, 0.0, 0, bytes_in=5, bytes_out=4)
    s = sample(prev, cur, vcpus=1, ram_mib=GIB2, host_cpus=1)
    assert s.network_bps_ingress is None and s.network_bps_egress is None


def test_an_interval_without_length_is_no_sample() -> None:
    r = Reading(5.0, 1.0, 1)
    assert sample(r, r, vcpus=1, ram_mib=GIB2, host_cpus=1) is None


@given(
    seconds=st.floats(0.001, 1e6),
    used=st.floats(0, 1e7),
    vcpus=st.integers(1, 64),
    host=st.integers(1, 256),
)
def test_cpu_util_always_within_0_100(seconds: float, used: float, vcpus: int, host: int) -> None:
    s = sample(Reading(0.0, 0.0, 0), Reading(seconds, used, 0), vcpus=vcpus, ram_mib=GIB2, host_cpus=host)
    assert 0.0 <= s.cpu_util <= 100.0
    assert cpus_for(vcpus, host) == min(vcpus, host)


# -- windows ---------------------------------------------------------------------------
NOW = 1_800_000_000 + 37.5  # 2027-01-15T08:00:37.5Z: 37.5 s past a minute


def test_hour_window_is_one_slot_per_interval_ending_with_the_newest_complete_sample() -> None:
    w = window(NOW, 60, "hour", 1)
    assert w.width == 60 and len(w.starts) == 60
    # the newest tick is 08:00:00; the newest complete sample started at 07:59:00
    assert w.starts[-1] == 1_800_000_000 - 60 and w.end == 1_800_000_000
    assert w.begin == 1_800_000_000 - 3600
    assert list(w.starts) == sorted(w.starts) and all(s % 60 == 0 for s in w.starts)


def test_day_window_is_hourly_up_to_the_current_hour() -> None:
    hour = 1_800_000_000  # 08:00:00, a whole hour
    w = window(NOW + 120, 60, "day", 2)  # 08:02:37: two samples of this hour are complete
    assert w.width == 3600 and len(w.starts) == 48
    assert w.starts[-1] == hour  # the current hour, averaged over what it has so far
    assert all(b - a == 3600 for a, b in zip(w.starts, w.starts[1:], strict=False))
    # 08:00:37: no sample of this hour is complete yet: the newest entry is 07:00
    assert window(NOW, 60, "day", 2).starts[-1] == hour - 3600


def test_short_intervals_widen_slots_to_at_most_max_points() -> None:
    w = window(NOW, 1, "hour", 1)  # 3600 one-second samples
    assert w.width == 3 and len(w.starts) == 1200 <= MAX_POINTS
    # newest tick 08:00:37, newest sample 08:00:36: the last slot is [08:00:36, 08:00:39)
    assert w.starts[-1] == 1_800_000_036 and w.end == 1_800_000_039


def test_windows_reach_back_at_most_the_retention() -> None:
    for unit, n in (("hour", 10**9), ("day", 10**6), ("day", RETENTION_DAYS + 1)):
        w = window(NOW, 60, unit, n)
        assert w.end - w.begin <= RETENTION_DAYS * 86400 + w.width
        assert len(w.starts) <= MAX_POINTS
    assert len(window(NOW, 60, "day", RETENTION_DAYS).starts) == RETENTION_DAYS * 24


@given(
    now=st.floats(1e9, 4e9),
    interval=st.integers(1, 3600),
    unit=st.sampled_from(["hour", "day"]),
    n=st.integers(1, 2000),
)
def test_window_slots_are_contiguous_aligned_and_bounded(
    now: float, interval: int, unit: str, n: int
) -> None:
    w = window(now, interval, unit, n)
    assert 1 <= len(w.starts) <= MAX_POINTS
    assert all(s % w.width == 0 for s in w.starts)
    assert all(b - a == w.width for a, b in zip(w.starts, w.starts[1:], strict=False))
    newest_tick = (now // interval) * interval
    # the newest sample (started one interval before the newest tick) falls in the last slot
    if unit == "hour" or 3600 % interval == 0:
        assert w.starts[-1] <= newest_tick - interval < w.end
    assert w.end <= newest_tick + w.width
