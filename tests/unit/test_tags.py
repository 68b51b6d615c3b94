"""The seed's tag semantics: RFC 7386 merge patch laws, read-only tags, validation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lbaas.domain.tags import Tag, clean_tag_map, merge_patch, to_wire
from lbaas.errors import ValidationFailed

keys = st.text(
    alphabet=st.characters(blacklist_categories=("Z", "C"), blacklist_characters="="), min_size=1, max_size=12
)
values = st.text(alphabet="abcXYZ019-_. ", min_size=1, max_size=12).map(str.strip).filter(bool)


@st.composite
def tag_sets(draw) -> dict[str, Tag]:
    out = {}
    for k in draw(st.lists(keys, max_size=6, unique=True)):
        out[k] = Tag(k, draw(values), read_only=draw(st.booleans()))
    return out


def user_patches(current: dict[str, Tag]):
    """Patches that do not name a read-only key (those are refused as a whole)."""
    free = keys.filter(lambda k: not (k in current and current[k].read_only))
    return st.dictionaries(free, st.none() | values, max_size=6)


@given(st.data())
def test_idempotent(data) -> None:
    current = data.draw(tag_sets())
    patch = data.draw(user_patches(current))
    once = merge_patch(current, patch)
    assert merge_patch(once, patch) == once


@given(tag_sets())
def test_empty_patch_changes_nothing(current) -> None:
    assert merge_patch(current, {}) == current


@given(st.data())
def test_result_keys(data) -> None:
    current = data.draw(tag_sets())
    patch = data.draw(user_patches(current))
    result = merge_patch(current, patch)
    nulls = {k for k, v in patch.items() if v is None}
    sets = {k for k, v in patch.items() if v is not None}
    assert set(result) == (set(current) - nulls) | sets
    for k in sets:
        assert result[k] == Tag(k, patch[k].strip(), False)


@given(tag_sets())
def test_null_removes_user_tags_only(current) -> None:
    result = merge_patch(current, None)
    assert result == {k: t for k, t in current.items() if t.read_only}


@given(st.data())
def test_read_only_keys_refused_and_unchanged(data) -> None:
    current = data.draw(tag_sets())
    locked = [k for k, t in current.items() if t.read_only]
    if not locked:
        return
    key = data.draw(st.sampled_from(locked))
    with pytest.raises(ValidationFailed) as exc:
        merge_patch(current, {key: data.draw(st.none() | values)})
    assert f"tags.{key}" in exc.value.invalid_fields


@pytest.mark.parametrize(
    "patch, expected",
    [
        # The seed page's examples, one by one.
        (
            {"environment": "production", "team": "backend"},
            {"environment": "production", "team": "backend", "old_tag": "x", "keep": "y"},
        ),
        ({"old_tag": None}, {"keep": "y"}),
        (None, {}),
        ({"environment": "staging"}, {"environment": "staging", "old_tag": "x", "keep": "y"}),
        (
            {"environment": "production", "cost_center": "engineering", "old_tag": None},
            {"environment": "production", "cost_center": "engineering", "keep": "y"},
        ),
    ],
)
def test_seed_examples(patch, expected) -> None:
    current = {"old_tag": Tag("old_tag", "x"), "keep": Tag("keep", "y")}
    assert {k: t.value for k, t in merge_patch(current, patch).items()} == expected


@pytest.mark.parametrize("bad", ["", " ", "a b", "a=b", "x" * 256])
def test_bad_keys(bad) -> None:
    with pytest.raises(ValidationFailed):
        merge_patch({}, {bad: "v"})


@pytest.mark.parametrize("bad", ["", "   ", "a\tb", "a\nb", "x" * 256])
def test_bad_values(bad) -> None:
    with pytest.raises(ValidationFailed):
        merge_patch({}, {"k": bad})


def test_whitespace_is_stripped_first() -> None:
    assert merge_patch({}, {"  env ": "  prod  "}) == {"env": Tag("env", "prod")}
    assert clean_tag_map({" k ": " v "}) == {"k": "v"}


def test_wire_is_sorted_by_key() -> None:
    tags = {"b": Tag("b", "2"), "a": Tag("a", "1", True)}
    assert to_wire(tags) == [
        {"key": "a", "value": "1", "read_only": True},
        {"key": "b", "value": "2", "read_only": False},
    ]
