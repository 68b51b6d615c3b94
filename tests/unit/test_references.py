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
    assert all(r.outcome for r in refs.RULES)


def test_pool_default_of_live_listener_is_refused() -> None:
    with pytest.raises(ValidationFailed) as exc:
        refs.check_pool_deletable("p1", "l1", [])
    assert "pool_id" in exc.value.invalid_fields and "l1" in exc.value.message


def test_pool_redirect_target_is_refused() -> None:
    with pytest.raises(ValidationFailed) as exc:
        refs.check_pool_deletable("p1", None, ["pol1", "pol2"])
    assert "pol1, pol2" in exc.value.message


def test_free_pool_is_deletable() -> None:
    refs.check_pool_deletable("p1", None, [])


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
