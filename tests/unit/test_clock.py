"""Timestamps keep Gcore's text forms (isoformat stands in for strftime on the hot paths)."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from lbaas.clock import fmt_resource, fmt_task

times = st.datetimes(min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(9999, 12, 31, 23, 59, 59))


@given(times)
def test_the_same_text_as_strftime(ts: dt.datetime) -> None:
    assert fmt_resource(ts) == ts.strftime("%Y-%m-%dT%H:%M:%S+0000")
    assert fmt_task(ts) == ts.strftime("%Y-%m-%dT%H:%M:%S")
    assert fmt_resource(None) is None and fmt_task(None) is None
