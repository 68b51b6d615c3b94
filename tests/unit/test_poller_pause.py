"""The poller's wait after a round (issue 8 §5: 1,000 LBs make a round long)."""

from __future__ import annotations

import pytest

from lbaas.tasks.poller import pause_after


@pytest.mark.parametrize(
    ("round_s", "interval", "wait"),
    [
        (0.01, 1.0, 0.99),  # a quick round: the rest of the interval
        (0.4, 1.0, 0.6),
        (0.6, 1.0, 0.6),  # past half the interval: as long as the round took
        (2.5, 1.0, 2.5),  # longer than the interval: the API still gets half the time
        (0.299, 0.3, 0.299),
        (0.0, 0.0, 0.05),  # never a busy loop
    ],
)
def test_the_poller_waits_at_least_as_long_as_its_round_took(
    round_s: float, interval: float, wait: float
) -> None:
    assert pause_after(round_s, interval) == pytest.approx(wait)


def test_a_drift_check_does_not_lengthen_the_pause() -> None:
    assert pause_after(0.2, 1.0, elapsed=0.5) == pytest.approx(0.5)
    assert pause_after(0.2, 1.0, elapsed=4.0) == pytest.approx(0.2)
