"""The fast lane answers byte for byte what FastAPI's road answers, valid and invalid requests alike.

Two apps share one database: one with the lane (the product), one without. A sample of requests
to the lane's routes (GET and the seed PATCH of one LB, the LB list, GET of a task), with good
and bad path parameters, query strings, bodies and keys, goes to both; the answers must be equal
(status, content type and body; a request id differs by nature and is masked).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lbaas.api.app import create_app
from lbaas.api.fastlane import FastLane
from lbaas.config import Settings
from tests.conftest import ADMIN_TOKEN, _drop_pg, _start, database_url

RID = re.compile(rb'"request_id":"[0-9a-f]{32}"')


class Pair:
    def __init__(self, lane: httpx.Client, road: httpx.Client) -> None:
        self.lane, self.road = lane, road

    def both(self, method: str, url: str, **kw) -> tuple[httpx.Response, httpx.Response]:
        a = self.lane.request(method, url, **kw)
        b = self.road.request(method, url, **kw)
        return a, b

    def same(self, method: str, url: str, mask_updated: bool = False, **kw) -> httpx.Response:
        a, b = self.both(method, url, **kw)
        body_a, body_b = RID.sub(b"RID", a.content), RID.sub(b"RID", b.content)
        if mask_updated:
            body_a = re.sub(rb'"updated_at":"[^"]*"', b"U", body_a)
            body_b = re.sub(rb'"updated_at":"[^"]*"', b"U", body_b)
        assert (a.status_code, a.headers.get("content-type"), body_a) == (
            b.status_code,
            b.headers.get("content-type"),
            body_b,
        ), (method, url, kw)
        return a


@pytest.fixture(scope="module", params=["sqlite", "pg"])
def pair(request, tmp_path_factory) -> Iterator[Pair]:
    tmp: Path = tmp_path_factory.mktemp("lane")
    url = database_url(request.param, tmp)
    cfg = Settings.from_env(database_url=url, data_dir=tmp, admin_api_key=ADMIN_TOKEN, provider="noop")
    lane_app = create_app(cfg)
    lane_server, lane_thread = _start(lane_app, request.param)
    road_server, road_thread = _start(create_app(cfg, fast_lane=False, start_worker=False), request.param)
    headers = {"Authorization": f"APIKey {ADMIN_TOKEN}"}
    try:
        with (
            httpx.Client(base_url=lane_server.url, headers=headers) as lane,
            httpx.Client(base_url=road_server.url, headers=headers) as road,
        ):
            yield Pair(lane, road)
        lane_mw = lane_app.middleware_stack
        while not isinstance(lane_mw, FastLane):
            lane_mw = lane_mw.app
        assert lane_mw.served > 50  # the lane did answer: the comparisons above were not vacuous
    finally:
        for thread in (lane_thread, road_thread):
            thread.server.should_exit = True
            thread.join(15)
        if request.param == "pg":
            _drop_pg(url)


LB = "/cloud/v1/loadbalancers/1/1"


@pytest.fixture(scope="module")
def lb_id(pair: Pair) -> str:
    r = pair.lane.post(LB, json={"name": "lane-lb", "tags": {"env": "prod", "team": "a"}})
    assert r.status_code == 200, r.text
    task = r.json()["tasks"][0]
    pair.lane.post(LB, json={"name": "other-lb"})
    return pair.lane.get(f"/cloud/v1/tasks/{task}").json()["created_resources"]["loadbalancers"][0]


QUERIES = [
    "",
    "show_stats=true",
    "show_stats=1",
    "show_stats=yes",
    "show_stats=maybe",
    "show_stats=true&show_stats=false",
    "with_ddos=true",
    "unknown=1",
    "show_stats=",
]


@pytest.mark.parametrize("query", QUERIES)
def test_get_one(pair: Pair, lb_id: str, query: str) -> None:
    pair.same("GET", f"{LB}/{lb_id}?{query}" if query else f"{LB}/{lb_id}")


@pytest.mark.parametrize(
    "path",
    [
        "/cloud/v1/loadbalancers/1/1/00000000-0000-4000-8000-000000000000",
        "/cloud/v1/loadbalancers/1/1/not-a-uuid",
        "/cloud/v1/loadbalancers/1/1/status",
        "/cloud/v1/loadbalancers/1/99999999999/00000000-0000-4000-8000-000000000000",
        "/cloud/v1/loadbalancers/-1/1/00000000-0000-4000-8000-000000000000",
        "/cloud/v1/loadbalancers/99/1/00000000-0000-4000-8000-000000000000",
        "/cloud/v1/loadbalancers/1/1/",
        "/cloud/v1/loadbalancers/1/1//x",
        "/cloud/v1/tasks/00000000-0000-4000-8000-000000000000",
        "/cloud/v1/tasks/nope",
    ],
)
def test_odd_paths(pair: Pair, path: str) -> None:
    pair.same("GET", path)


def test_keys(pair: Pair, lb_id: str) -> None:
    for auth in ("", "APIKey nope", "Bearer x", f"APIKey {ADMIN_TOKEN}x"):
        pair.same("GET", f"{LB}/{lb_id}", headers={"Authorization": auth})


@pytest.mark.parametrize(
    "query",
    [
        "",
        "limit=1",
        "limit=1&offset=1",
        "limit=0",
        "limit=1001",
        "offset=-1",
        "order_by=name.asc",
        "order_by=name.sideways",
        "name=lane-lb",
        "tag_key=env",
        "tag_key=env&tag_key=team",
        'tag_key_value={"env":"prod"}',
        "tag_key_value=nope",
        "operating_status=ONLINE",
        "provisioning_status=ACTIVE",
        "logging_enabled=false",
        "assigned_floating=true",
        "show_stats=true",
        "limit=2&limit=3",
        "whatever=1",
    ],
)
def test_list(pair: Pair, lb_id: str, query: str) -> None:
    pair.same("GET", f"{LB}?{query}")


BODIES = [
    {"name": "renamed"},
    {"tags": {"env": "dev", "team": None}},
    {"tags": None},
    {"name": None},
    {"name": 5},
    {"name": ""},
    {"unknown": 1},
    {"logging": {"enabled": True}},
    {"logging": {"enabled": False}},
    {"preferred_connectivity": "L3"},
    {"preferred_connectivity": "L9"},
    {"tags": {"bad key": "v"}},
    [],
    "x",
]


@pytest.mark.parametrize("body", BODIES, ids=[str(i) for i in range(len(BODIES))])
def test_seed_patch(pair: Pair, lb_id: str, body) -> None:
    pair.same("PATCH", f"{LB}/{lb_id}", json=body, mask_updated=True)
    pair.same("GET", f"{LB}/{lb_id}")


def test_seed_patch_odd_bodies(pair: Pair, lb_id: str) -> None:
    url = f"{LB}/{lb_id}"
    # updated_at masked where a PATCH may succeed: the two roads' writes may fall in two seconds
    pair.same("PATCH", url, content=b"", headers={"Content-Type": "application/json"})
    text = {"Content-Type": "text/plain"}
    pair.same("PATCH", url, content=b'{"name": "x-lb"}', headers=text, mask_updated=True)
    utf8 = {"Content-Type": "application/json; charset=utf-8"}
    pair.same("PATCH", url, content=b'{"name": "y-lb"}', headers=utf8, mask_updated=True)
    pair.same("PATCH", "/cloud/v1/loadbalancers/1/1/not-a-uuid", json={"name": "z-lb"})
    pair.same(
        "PATCH", "/cloud/v1/loadbalancers/1/1/00000000-0000-4000-8000-000000000000", json={"name": "z-lb"}
    )


def test_task_get(pair: Pair) -> None:
    r = pair.lane.post(LB, json={"name": "task-lb"})
    pair.same("GET", f"/cloud/v1/tasks/{r.json()['tasks'][0]}")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.one_of(st.none(), st.text(max_size=70), st.integers()),
    tags=st.one_of(
        st.none(),
        st.dictionaries(st.text(max_size=8), st.one_of(st.none(), st.text(max_size=8)), max_size=3),
    ),
    show=st.sampled_from(["", "true", "false", "0", "x"]),
)
def test_random_requests(pair: Pair, lb_id: str, name, tags, show) -> None:
    body = {}
    if name is not None:
        body["name"] = name
    if tags is not None:
        body["tags"] = tags
    pair.same("PATCH", f"{LB}/{lb_id}", json=body, mask_updated=True)
    pair.same("GET", f"{LB}/{lb_id}?show_stats={show}")
