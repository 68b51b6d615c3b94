"""Each delete/reference rule of lbaas.domain.references, once."""

from __future__ import annotations

import pytest

from lbaas.domain import references as refs
from lbaas.errors import ValidationFailed


def test_rules_table_is_complete() -> None:
    ops = {r.operation for r in refs.RULES}
    assert {
        "delete load balancer",
        "delete listener",
        "delete pool",
        "delete secret",
        "create pool for a listener",
    } <= ops
    assert all(r.outcome and r.source for r in refs.RULES)


def test_every_refusal_names_a_source() -> None:
    refusals = [r for r in refs.RULES if r.outcome[:3].isdigit()]
    assert refusals and all(len(r.source) > 10 for r in refusals)


def test_no_rule_keeps_a_listeners_default_pool() -> None:
    # Terraform deletes a pool before the listener it names; Octavia refuses only L7 targets.
    pool_rules = [r for r in refs.RULES if r.operation == "delete pool"]
    assert not any("default pool" in r.condition and r.outcome == "400" for r in pool_rules)
    assert any("left without a default pool" in r.outcome for r in pool_rules)


def test_pool_redirect_target_is_refused() -> None:
    with pytest.raises(ValidationFailed) as exc:
        refs.check_pool_deletable("p1", ["pol1", "pol2"])
    assert "pool_id" in exc.value.invalid_fields and "pol1, pol2" in exc.value.message


def test_free_pool_is_deletable() -> None:
    refs.check_pool_deletable("p1", [])


def test_pool_of_another_listener_refused() -> None:
    with pytest.raises(ValidationFailed) as exc:
        refs.check_pool_unattached("p1", "l1")
    assert "default_pool_id" in exc.value.invalid_fields and "l1" in exc.value.message
    refs.check_pool_unattached("p1", None)


def test_default_pool_cascade_refused_when_routed_to() -> None:
    with pytest.raises(ValidationFailed) as exc:
        refs.check_default_pool_deletable("p1", ["pol9"])
    assert "delete_default_pool" in exc.value.invalid_fields
    refs.check_default_pool_deletable("p1", [])


def test_second_default_pool_refused() -> None:
    with pytest.raises(ValidationFailed):
        refs.check_no_default_pool("l1", "p0")
    refs.check_no_default_pool("l1", None)


def test_pool_of_another_lb_refused() -> None:
    with pytest.raises(ValidationFailed) as exc:
        refs.check_same_load_balancer("p1", "lb-a", "lb-b", "redirect_pool_id")
    assert "redirect_pool_id" in exc.value.invalid_fields
    refs.check_same_load_balancer("p1", "lb-a", "lb-a", "redirect_pool_id")


def test_secret_in_use_refused() -> None:
    with pytest.raises(ValidationFailed):
        refs.check_secret_unused("s1", ["listener l1"])
    refs.check_secret_unused("s1", [])


def test_api_compat_quotes_the_rules_table() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "api-compat.md").read_text()
    section = doc[doc.index("### Delete and reference rules") :]
    rows = [
        line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| Operation")
    ]
    quoted = [tuple(cell.strip() for cell in row.strip("|").split(" | ")) for row in rows]
    assert quoted == [tuple(r) for r in refs.RULES]
