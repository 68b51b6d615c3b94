"""Every endpoint of the spec list is routed, and the spec list covers every SDK method.

One request per endpoint of ``tests/data/endpoints.json`` (a copy of shared/spec/endpoints.json) (admin key,
project 1, region 1, random UUIDs for resource ids, an empty JSON body) must
reach a handler: no 405, no router-level 404 ("The requested URL ... was not
found"), no 5xx, and any error in Gcore's body shape. A 404 for a missing
resource, a 400 for the empty body or a 409 are all fine: the route exists.
A success must carry the spec's status; whatever it created (an empty body is a
valid floating IP create) is deleted again, so project 1 stays as it was.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN

# A copy of shared/spec/endpoints.json lives with the tests, so the check needs nothing outside the repo.
_COPY = Path(__file__).resolve().parents[1] / "data" / "endpoints.json"
SPEC = Path(os.environ.get("LBAAS_SPEC_ENDPOINTS", _COPY))
ENDPOINTS: list[dict[str, Any]] = json.loads(SPEC.read_text()) if SPEC.exists() else []

# Endpoints known not to be routed: "METHOD path" -> reason. Kept empty while all are served.
UNROUTED: dict[str, str] = {}

# Path parameters that are integers (project and region); every other one is a resource id.
INT_PARAMS = {"project_id", "region_id"}


def _endpoint_id(ep: dict[str, Any]) -> str:
    return f"{ep['method']} {ep['path']}"


def _params() -> list[Any]:
    params = []
    for ep in ENDPOINTS:
        marks = []
        reason = UNROUTED.get(_endpoint_id(ep))
        if reason:
            marks.append(pytest.mark.xfail(reason=f"{_endpoint_id(ep)} is not routed: {reason}", strict=True))
        params.append(pytest.param(ep, id=_endpoint_id(ep), marks=marks))
    return params


def _url(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: "1" if m.group(1) in INT_PARAMS else str(uuid.uuid4()), path)


HEADERS = {"Authorization": f"APIKey {ADMIN_TOKEN}", "Accept": "application/json"}


def _request(server, ep: dict[str, Any]) -> httpx.Response:
    method, path = ep["method"], ep["path"]
    kwargs: dict[str, Any] = {}
    if method in ("POST", "PATCH", "PUT"):
        kwargs["json"] = [] if method == "PUT" and path.endswith("/members") else {}
    if path == "/cloud/v1/tasks/acknowledge_all":
        # Without a scope the admin key would acknowledge every project's tasks.
        kwargs["params"] = {"project_id": 1, "region_id": 1}
    return httpx.request(method, server.url + _url(path), headers=HEADERS, timeout=30, **kwargs)


def _finished_task(server, task_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        task = httpx.get(f"{server.url}/cloud/v1/tasks/{task_id}", headers=HEADERS).json()
        if task["state"] in ("FINISHED", "ERROR") or time.monotonic() > deadline:
            return task
        time.sleep(0.05)


def _clean_up(server, ep: dict[str, Any], r: httpx.Response) -> None:
    """An empty body that creates something (a floating IP does) must not leave it in project 1."""
    if ep["method"] != "POST" or r.status_code != 200 or not isinstance(r.json(), dict):
        return
    deletes = [
        e["path"]
        for e in ENDPOINTS
        if e["method"] == "DELETE" and re.fullmatch(re.escape(ep["path"]) + r"/\{\w+\}", e["path"])
    ]
    for task_id in r.json().get("tasks") or []:
        created = _finished_task(server, task_id).get("created_resources") or {}
        for ids in created.values():
            for rid in ids or []:
                assert deletes, f"{_endpoint_id(ep)} created {rid} and has no DELETE to remove it"
                url = server.url + _url(deletes[0].rsplit("/", 1)[0]) + "/" + rid
                d = httpx.delete(url, headers=HEADERS)
                assert d.status_code == 200, d.text
                for t in d.json().get("tasks") or []:
                    _finished_task(server, t)


def test_spec_list_is_present() -> None:
    if not SPEC.exists() and os.environ.get("CI") != "true":
        pytest.skip(f"!!! {SPEC} not found: route coverage NOT checked (set LBAAS_SPEC_ENDPOINTS)")
    assert len(ENDPOINTS) == 70, f"expected the 70 endpoints of {SPEC}"


@pytest.mark.parametrize("ep", _params())
def test_endpoint_is_routed(server, ep: dict[str, Any]) -> None:
    r = _request(server, ep)
    where = f"{_endpoint_id(ep)} -> {r.status_code} {r.text[:300]}"
    assert r.status_code != 405, where
    assert r.status_code < 500, where
    if r.status_code >= 400:
        body = r.json()
        assert {"exception_class", "message", "request_id"} <= set(body), where
        assert body["request_id"] == r.headers["x-request-id"], where
        if r.status_code == 404:
            assert not re.match(r"The requested URL .* was not found", body["message"]), where
    else:
        assert r.status_code == ep["success_status"], where
        _clean_up(server, ep, r)


# --- the spec list covers every SDK method -------------------------------------------------------

SDK_RESOURCES = [
    "load_balancers",
    "load_balancers.listeners",
    "load_balancers.pools",
    "load_balancers.pools.members",
    "load_balancers.pools.health_monitors",
    "load_balancers.l7_policies",
    "load_balancers.l7_policies.rules",
    "load_balancers.flavors",
    "load_balancers.statuses",
    "load_balancers.metrics",
    "floating_ips",
    "secrets",
    "tasks",
    "projects",
    "regions",
]


def _is_helper(name: str) -> bool:
    return name in ("with_raw_response", "with_streaming_response", "poll") or name.endswith("_and_poll")


def _sdk_methods() -> set[str]:
    from gcore import Gcore

    sdk = Gcore(api_key="unused", base_url="http://127.0.0.1:9", cloud_project_id=1, cloud_region_id=1)
    methods = set()
    for dotted in SDK_RESOURCES:
        obj: Any = sdk.cloud
        for part in dotted.split("."):
            obj = getattr(obj, part)
        for name in dir(obj):
            if name.startswith("_") or _is_helper(name):
                continue
            if callable(getattr(type(obj), name, None)):
                methods.add(f"client.cloud.{dotted}.{name}")
    return methods


def test_spec_covers_every_sdk_method() -> None:
    if not ENDPOINTS:
        pytest.skip(f"{SPEC} not found")
    covered = set()
    for ep in ENDPOINTS:
        # sdk_call is e.g. "client.cloud.tasks.get (and tasks.poll)" or "(none in SDK 0.59.0)".
        covered.update(re.findall(r"client\.cloud(?:\.\w+)+", ep["sdk_call"]))
    methods = _sdk_methods()
    assert len(methods) > 40
    assert sorted(methods - covered) == []
    assert sorted(covered - methods) == [], "sdk_call names a method the SDK does not have"
