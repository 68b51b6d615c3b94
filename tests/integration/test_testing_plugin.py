"""The shipped pytest plugin (lbaas.testing), run as a user would: an inner pytest session."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

USER_TESTS = """
import gcore
import pytest


def test_creates(lbaas, gcore_client):
    assert lbaas.url.startswith("http://127.0.0.1:") and lbaas.admin_key
    lb = gcore_client.cloud.load_balancers.create_and_poll(name="lb-one")
    assert lb.provisioning_status == "ACTIVE"


def test_each_test_starts_clean(lbaas, gcore_client):
    assert gcore_client.cloud.load_balancers.list().count == 0
    project = lbaas.new_project("team")
    assert project.id == 2  # ids restart too: a reset server is a fresh server
    assert lbaas.client(project).cloud.load_balancers.list().count == 0


def test_controls(lbaas, gcore_client):
    lbs = gcore_client.cloud.load_balancers
    lbaas.hold_tasks("create_loadbalancer")
    task_id = lbs.create(name="lb-held").tasks[0]
    assert [t["task_id"] for t in lbaas.held_tasks()] == [task_id]
    assert lbaas.release_tasks() == {"released": [task_id]}
    assert gcore_client.cloud.tasks.get(task_id).state == "FINISHED"
    lbaas.immediate_tasks("create_loadbalancer")
    lbaas.fail_next("create_loadbalancer", error="boom")
    with pytest.raises(ValueError, match="boom"):
        lbs.create_and_poll(name="lb-failed")
    lbaas.inject_http(429, "/loadbalancers/", retry_after=0.01)
    with pytest.raises(gcore.RateLimitError):
        gcore_client.with_options(max_retries=0).cloud.load_balancers.list()
    assert lbaas.journal(injected=True)[0]["status"] == 429
    lbaas.add_latency(1, count=1)
    assert {f["kind"] for f in lbaas.faults()} == {"latency"}
    assert lbaas.clear_faults() == 3  # spent ones too
    assert lbaas.faults(all=True) == []


async def test_async(async_gcore_client):
    assert (await async_gcore_client.cloud.load_balancers.list()).count == 0


def test_fails_on_purpose(gcore_client):
    gcore_client.cloud.load_balancers.list()
    assert False, "shows the journal"
"""


def test_plugin_fixtures_and_controls(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "lbaas.testing", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4, failed=1)
    # A failing test's report shows the requests it made.
    result.stdout.fnmatch_lines(
        ["*lbaas journal (last requests)*", "GET /cloud/v1/loadbalancers/1/1 -> 200 in *"]
    )


def test_plugin_subprocess_mode(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_sub="""
def test_served_by_a_child_process(lbaas, gcore_client):
    assert gcore_client.cloud.load_balancers.create_and_poll(name="lb-sub").provisioning_status == "ACTIVE"
    lbaas.reset()
    assert gcore_client.cloud.load_balancers.list().count == 0
"""
    )
    result = pytester.runpytest_subprocess("-p", "lbaas.testing", "--lbaas-mode=subprocess")
    result.assert_outcomes(passed=1)


def test_plugin_against_a_running_server(pytester: pytest.Pytester, tmp_path) -> None:
    from tests.conftest import ADMIN_TOKEN, serve

    pytester.makepyfile(
        test_remote="""
def test_remote(lbaas, gcore_client):
    assert gcore_client.cloud.regions.get(region_id=1).id == 1
"""
    )
    with serve("sqlite", tmp_path) as server:  # its own: the plugin resets the server it drives
        # --lbaas-url without a key is a usage error; with one it drives that server.
        assert pytester.runpytest_subprocess("-p", "lbaas.testing", f"--lbaas-url={server.url}").ret != 0
        ok = pytester.runpytest_subprocess(
            "-p", "lbaas.testing", f"--lbaas-url={server.url}", f"--lbaas-admin-key={ADMIN_TOKEN}"
        )
        ok.assert_outcomes(passed=1)
