"""The LB's ``logging`` object on every way in (create, seed PATCH, v2 PATCH): the spec's topic
pattern and an existing destination region, refused with a 400 that changes nothing."""

from __future__ import annotations

import gcore
import pytest

# Gcore's OpenAPI (LoadbalancerLoggingSerializer.topic_name): pattern
# ^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])*)*$, 1..223 characters.
GOOD_TOPICS = ["a", "0", "my-log-name", "a.b", "web-1.access-log.eu", "x" * 223]
BAD_TOPICS = ["A", "-a", "a-", "a..b", ".a", "a.", "a_b", "a b", "a/b", "..", "x" * 224, "a\n", ""]


def _refused(call, field: str) -> None:
    with pytest.raises(gcore.BadRequestError) as exc:
        call()
    assert exc.value.status_code == 400
    assert field in exc.value.body["invalid_fields"], exc.value.body
    assert exc.value.body["exception_class"] and exc.value.body["request_id"]


def test_topic_pattern_and_region_on_create(client) -> None:
    lbs = client.cloud.load_balancers
    before = lbs.list().count
    for topic in BAD_TOPICS:
        _refused(lambda t=topic: lbs.create(name="log-lb", logging={"topic_name": t}), "logging.topic_name")
    _refused(
        lambda: lbs.create(name="log-lb", logging={"enabled": True, "destination_region_id": 424242}),
        "logging.destination_region_id",
    )
    assert lbs.list().count == before  # nothing was created
    lb = lbs.create_and_poll(
        name="log-lb", logging={"enabled": True, "topic_name": GOOD_TOPICS[2], "destination_region_id": 1}
    )
    assert lb.logging.topic_name == "my-log-name" and lb.logging.destination_region_id == 1


def test_topic_pattern_and_region_on_both_patches(client) -> None:
    lbs = client.cloud.load_balancers
    lb = lbs.create_and_poll(name="log-lb", logging={"enabled": True, "topic_name": "kept"})
    v2 = f"/cloud/v2/loadbalancers/{client.cloud_project_id}/1/{lb.id}"
    tasks_before = client.cloud.tasks.list().count
    for topic in BAD_TOPICS:
        _refused(lambda t=topic: lbs.update(lb.id, logging={"topic_name": t}), "logging.topic_name")
        _refused(
            lambda t=topic: client.patch(v2, body={"logging": {"topic_name": t}}, cast_to=object),
            "logging.topic_name",
        )
    for call in (
        lambda: lbs.update(lb.id, logging={"enabled": True, "destination_region_id": 424242}),
        lambda: client.patch(
            v2, body={"logging": {"enabled": True, "destination_region_id": 424242}}, cast_to=object
        ),
    ):
        _refused(call, "logging.destination_region_id")
    got = lbs.get(lb.id)
    assert got.logging.topic_name == "kept" and got.provisioning_status == "ACTIVE"
    assert client.cloud.tasks.list().count == tasks_before  # no task was queued
    for topic in GOOD_TOPICS:
        assert lbs.update(lb.id, logging={"enabled": True, "topic_name": topic}).logging.topic_name == topic
