"""Schemathesis over Gcore's OpenAPI subset against a real server: no input gives a 5xx.

Every operation of ``tests/data/gcore-lb-openapi.json`` (a copy of
shared/spec/gcore-lb-openapi.json) gets

* schemathesis' coverage cases: every boundary and every kind of wrong value
  for each parameter and body field (numbers past the edges, wrong types,
  nulls, odd strings, missing and extra fields), deterministic by construction;
* every integer of the valid coverage cases (path, query and body) replaced in turn by
  integers past 64 and 32 bits: Gcore's schema bounds none of them, so the
  coverage cases do not try them;
* a few random cases drawn by Hypothesis, valid and invalid, with a fixed seed.

Where a case uses the spec's example value for a path id, the id of a real
object is put in its place (one object of each kind, see ``graph.py``), so the
requests reach the handlers rather than stopping at "no such load balancer".
The check is schemathesis' ``not_a_server_error``: any 5xx fails and names the
request. DELETE operations run last, so the objects live while the others run;
the project delete is left out (it would delete the project the others run in;
tests/api/test_tasks_projects.py covers it). The server is the noop provider
on SQLite; tests/api/test_odd_input.py runs the known odd inputs on both backends.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from lbaas.api.params import INT64_MAX
from tests.api.graph import build_graph
from tests.conftest import ADMIN_TOKEN, serve

SPEC = Path(__file__).resolve().parents[1] / "data" / "gcore-lb-openapi.json"
SPEC_DOC: dict[str, Any] = json.loads(SPEC.read_text())
SEED = 20240611
EXAMPLES = 5  # random cases per operation and mode, on top of the coverage cases
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
SKIP = {("DELETE", "/cloud/v1/projects/{project_id}")}
OPERATIONS = sorted(
    (
        (method.upper(), path)
        for path, ops in SPEC_DOC["paths"].items()
        for method in ops
        if method in ("get", "put", "post", "patch", "delete") and (method.upper(), path) not in SKIP
    ),
    key=lambda op: (op[0] == "DELETE", op[1], op[0]),
)
HEADERS = {"Authorization": f"APIKey {ADMIN_TOKEN}"}
EDGES = (2**63, -(2**63) - 1, 2**31, -(2**31) - 1)


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    with serve("sqlite", tmp_path_factory.mktemp("fuzz")) as srv:
        yield srv


@pytest.fixture(scope="module")
def pinned(fuzz_server) -> dict[str, Any]:
    return build_graph(fuzz_server).path_ids()


@pytest.fixture(scope="module")
def gcore_schema():
    return schemathesis.openapi.from_dict(SPEC_DOC)


def _examples(operation) -> dict[str, str]:
    """Path parameter -> the example value the spec gives it (what coverage cases use when valid)."""
    out = {}
    for param in operation.path_parameters:
        schema = param.definition.get("schema", {})
        example = schema.get("example", (schema.get("examples") or [None])[0])
        if example is not None:
            out[param.name] = str(example)
    return out


def _int_leaves(node: Any, at: tuple = ()) -> list[tuple]:
    """Where the integers of a JSON value are (booleans are not integers)."""
    if isinstance(node, bool):
        return []
    if isinstance(node, int):
        return [at]
    if isinstance(node, dict):
        return [leaf for k, v in node.items() for leaf in _int_leaves(v, (*at, k))]
    if isinstance(node, list):
        return [leaf for i, v in enumerate(node) for leaf in _int_leaves(v, (*at, i))]
    return []


def _replaced(node: Any, at: tuple, value: Any) -> Any:
    if not at:
        return value
    copy = dict(node) if isinstance(node, dict) else list(node)
    copy[at[0]] = _replaced(node[at[0]], at[1:], value)
    return copy


def _edge_variants(cases) -> list[tuple[str, Any, Any]]:
    """(container, where, value) for each integer of the valid cases, once per place, past each edge."""
    seen, out = set(), []
    for case in cases:
        containers = {
            "path_parameters": {k: v for k, v in (case.path_parameters or {}).items() if str(v).isdigit()},
            "query": {k: v for k, v in (case.query or {}).items() if str(v).lstrip("-").isdigit()},
        }
        places = [(c, (k,)) for c, values in containers.items() for k in values]
        if isinstance(case.body, dict | list):
            places += [("body", leaf) for leaf in _int_leaves(case.body)]
        for container, at in places:
            if (container, at) not in seen:
                seen.add((container, at))
                out += [(case, container, at, edge) for edge in EDGES]
    return out


def _pin(case, examples: dict[str, str], pinned: dict[str, Any]) -> None:
    """Put the real ids where the case has the spec's example (or a generated valid) value."""
    for name, value in list((case.path_parameters or {}).items()):
        if name in pinned and (name not in examples or str(value) == examples[name]):
            case.path_parameters[name] = pinned[name]


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_input_gives_a_server_error(fuzz_server, pinned, gcore_schema, method, path) -> None:
    operation = gcore_schema[path][method]
    examples = _examples(operation)
    generation = gcore_schema.config.generation_for(operation=operation)
    coverage = gcore_schema.iter_coverage_cases(
        operation, generation_modes=MODES, generation_config=generation
    )
    valid = []
    for case in coverage:
        _pin(case, examples, pinned)
        response = case.call(base_url=fuzz_server.url, headers=HEADERS, timeout=30)
        case.validate_response(response, checks=[not_a_server_error])
        if case.meta.generation.mode is GenerationMode.POSITIVE:
            valid.append(case)
    assert valid

    for case, container, at, edge in _edge_variants(valid):
        before = getattr(case, container)
        setattr(case, container, _replaced(before, at, edge))
        try:
            response = case.call(base_url=fuzz_server.url, headers=HEADERS, timeout=30)
            where = (case.method, case.formatted_path, case.query, case.body, response.text[:300])
            assert response.status_code < 500, where
            if abs(edge) > INT64_MAX:  # fits no column: refused (a 32-bit edge may be a valid offset)
                assert response.status_code in (400, 404), where
        finally:
            setattr(case, container, before)

    fixed = {k: v for k, v in pinned.items() if k in {p.name for p in operation.path_parameters}}

    @settings(
        max_examples=EXAMPLES,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @seed(SEED)
    @given(
        case=st.one_of([operation.as_strategy(generation_mode=mode, path_parameters=fixed) for mode in MODES])
    )
    def random_cases(case) -> None:
        response = case.call(base_url=fuzz_server.url, headers=HEADERS, timeout=30)
        case.validate_response(response, checks=[not_a_server_error])

    random_cases()
