"""The seed endpoint: PATCH /cloud/v1/loadbalancers/{p}/{r}/{id}, synchronous merge patch."""

from __future__ import annotations

import threading

import gcore
import pytest

from lbaas.services import tags as tag_service


@pytest.fixture
def lb(client):
    return client.cloud.load_balancers.create_and_poll(
        name="seed-lb", tags={"my-tag": "my-tag-value", "my-tag-to-remove": "bye", "keep": "k"}
    )


def tags_of(obj) -> dict[str, str]:
    return {t.key: t.value for t in obj.tags_v2}


def test_response_equals_get_after(client, lb) -> None:
    patched = client.cloud.load_balancers.update(lb.id, tags={"my-tag": "new", "my-tag-to-remove": None})
    assert tags_of(patched) == {"my-tag": "new", "keep": "k"}
    assert patched.model_dump() == client.cloud.load_balancers.get(lb.id).model_dump()
    assert [t.key for t in patched.tags_v2] == sorted(t.key for t in patched.tags_v2)


def test_only_present_fields_change(client, lb) -> None:
    before = client.cloud.load_balancers.get(lb.id)
    after = client.cloud.load_balancers.update(lb.id, preferred_connectivity="L3")
    assert after.preferred_connectivity == "L3"
    assert after.name == before.name and tags_of(after) == tags_of(before)
    assert after.created_at == before.created_at
    assert after.updated_at is not None and after.updated_at >= before.created_at


def test_tags_null_removes_user_tags_keeps_read_only(server, client, lb) -> None:
    with server.db.write() as conn:
        tag_service.add_read_only(conn, lb.id, "billing", "team-a")
    after = client.cloud.load_balancers.update(lb.id, tags=None)
    assert [(t.key, t.value, t.read_only) for t in after.tags_v2] == [("billing", "team-a", True)]


@pytest.mark.parametrize("patch", [{"billing": "other"}, {"billing": None}, {"x": "1", "billing": None}])
def test_naming_a_read_only_tag_is_400_and_changes_nothing(server, client, lb, patch) -> None:
    with server.db.write() as conn:
        tag_service.add_read_only(conn, lb.id, "billing", "team-a")
    before = client.cloud.load_balancers.get(lb.id)
    with pytest.raises(gcore.BadRequestError) as exc:
        client.cloud.load_balancers.update(lb.id, tags=patch, name="changed-name")
    assert exc.value.body["exception_class"] == "ValidationError"
    assert "tags.billing" in exc.value.body["invalid_fields"]
    assert client.cloud.load_balancers.get(lb.id).model_dump() == before.model_dump()


def test_read_only_tag_over_user_tag(server, client, lb) -> None:
    with server.db.write() as conn:
        tag_service.add_read_only(conn, lb.id, "keep", "pinned")
    got = client.cloud.load_balancers.get(lb.id)
    assert [(t.value, t.read_only) for t in got.tags_v2 if t.key == "keep"] == [("pinned", True)]


def test_whitespace_stripped_and_empty_refused(client, lb) -> None:
    after = client.cloud.load_balancers.update(lb.id, tags={"  spaced  ": "  v  "})
    assert tags_of(after)["spaced"] == "v"
    for bad in ({"k": "   "}, {"   ": "v"}, {"a=b": "v"}, {"k": "a\nb"}):
        with pytest.raises(gcore.BadRequestError):
            client.cloud.load_balancers.update(lb.id, tags=bad)


def test_logging_replaced_as_a_whole(client, lb) -> None:
    first = client.cloud.load_balancers.update(
        lb.id,
        logging={
            "enabled": True,
            "topic_name": "my-log-name",
            "destination_region_id": 1,
            "retention_policy": {"period": 45},
        },
    )
    assert first.logging.enabled and first.logging.retention_policy.period == 45
    second = client.cloud.load_balancers.update(lb.id, logging={"enabled": False})
    assert second.logging.model_dump() == {
        "destination_region_id": None,
        "enabled": False,
        "retention_policy": None,
        "topic_name": None,
    }


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "x"}, "name"),
        ({"name": "-bad-start"}, "name"),
        ({"preferred_connectivity": "L4"}, "preferred_connectivity"),
        ({"logging": {"topic_name": "Bad Topic"}}, "logging.topic_name"),
        ({"logging": {"retention_policy": {"period": 0}}}, "logging.retention_policy.period"),
        ({"logging": {"retention_policy": {"period": 1826}}}, "logging.retention_policy.period"),
        ({"logging": {"destination_region_id": 999}}, "logging.destination_region_id"),
        ({"tags": {"k": 5}}, "tags.k"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_invalid_bodies_are_400_and_change_nothing(client, lb, body, field) -> None:
    before = client.cloud.load_balancers.get(lb.id).model_dump()
    with pytest.raises(gcore.BadRequestError) as exc:
        client.patch(
            f"/cloud/v1/loadbalancers/{client.cloud_project_id}/1/{lb.id}", body=body, cast_to=object
        )
    assert exc.value.status_code == 400
    assert field in exc.value.body["invalid_fields"], exc.value.body
    assert exc.value.body["request_id"]
    assert client.cloud.load_balancers.get(lb.id).model_dump() == before


def test_concurrent_patches_lose_nothing(client, lb) -> None:
    errors: list[Exception] = []

    def add(i: int) -> None:
        try:
            for j in range(3):
                client.cloud.load_balancers.update(lb.id, tags={f"t{i}-{j}": str(i)})
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    got = tags_of(client.cloud.load_balancers.get(lb.id))
    assert {f"t{i}-{j}" for i in range(8) for j in range(3)} <= set(got)


def test_patch_of_another_projects_lb_is_404(server, client, lb) -> None:
    from tests.conftest import make_client

    other = make_client(server)
    with pytest.raises(gcore.NotFoundError):
        other.cloud.load_balancers.update(lb.id, name="stolen")
    assert client.cloud.load_balancers.get(lb.id).name == "seed-lb"
