"""check_regex agrees with HAProxy's engine (PCRE2), not with Python's re."""

from __future__ import annotations

import re

import pytest

from lbaas.domain.pcre2 import check_regex, regex_matches


@pytest.mark.parametrize(
    "pattern",
    [r"^/\u0061$", r"(?<=a+)b", r"\x{100}", "(", "a{2,1}", r"\N{LATIN SMALL LETTER A}"],
)
def test_refused_by_pcre2(pattern: str) -> None:
    assert check_regex(pattern) is not None


def test_python_re_is_not_the_judge() -> None:
    """The reason this module exists: re accepts what HAProxy refuses."""
    re.compile(r"^/\u0061$")
    assert "does not support" in (check_regex(r"^/\u0061$") or "")


@pytest.mark.parametrize(
    "pattern", [r"^a#b$", r"^/api/v[0-9]+/.*\.json$", r"\d+", r"^(?i)host\.example$", "é+", r"\$\{x\}"]
)
def test_accepted(pattern: str) -> None:
    assert check_regex(pattern) is None


def test_nul_is_refused() -> None:
    assert "NUL" in (check_regex("a\0b") or "")


def test_matching_semantics() -> None:
    assert regex_matches(r"^a#b$", "a#b")
    assert not regex_matches(r"^A", "abc")
    assert regex_matches(r"^A", "abc", caseless=True)
    assert regex_matches(r"b", "abc")  # a search, like HAProxy's -m reg
    with pytest.raises(ValueError):
        regex_matches("(", "x")
