"""Tasks, projects and regions."""

from __future__ import annotations

import gcore
import pytest


def test_task_list_filters_and_acknowledge(client) -> None:
    lbs = client.cloud.load_balancers
    lb = lbs.create_and_poll(name="task-lb")
    deleting = lbs.delete(lb.id).tasks[0]
    pid = client.cloud_project_id
    tasks = client.cloud.tasks
    assert tasks.list(project_id=[pid]).count == 2
    assert [t.id for t in tasks.list(project_id=[pid], task_type="delete_loadbalancer")] == [deleting]
    assert tasks.list(project_id=[pid], state=["FINISHED"]).count == 2
    assert tasks.list(project_id=[pid], state=["NEW", "RUNNING"]).count == 0
    newest_first = [t.id for t in tasks.list(project_id=[pid]).results]
    oldest_first = [t.id for t in tasks.list(project_id=[pid], order_by="asc").results]
    assert newest_first == list(reversed(oldest_first)) and newest_first[0] == deleting
    assert tasks.list(project_id=[pid], is_acknowledged=True).count == 0
    acked = tasks.acknowledge_one(deleting)
    assert acked.acknowledged_at is not None and acked.acknowledged_by is not None
    assert [t.id for t in tasks.list(project_id=[pid], is_acknowledged=True)] == [deleting]
    tasks.acknowledge_all(project_id=pid, region_id=1)
    assert tasks.list(project_id=[pid], is_acknowledged=False).count == 0
    assert (
        tasks.list(
            project_id=[pid], from_timestamp="2000-01-01T00:00:00", to_timestamp="2000-01-02T00:00:00"
        ).count
        == 0
    )
    active = client.get(f"/cloud/v1/tasks/{pid}/1/active", cast_to=object)
    assert active == {"count": 0, "results": []}


def test_projects_admin_only(admin_client, client) -> None:
    projects = admin_client.cloud.projects
    made = projects.create(name="team-project", description="for a team")
    assert made.name == "team-project" and made.is_default is False and made.state == "ACTIVE"
    assert projects.get(project_id=made.id).description == "for a team"
    assert projects.update(project_id=made.id, name="renamed-project").name == "renamed-project"
    assert any(p.id == made.id for p in projects.list(limit=1000).results)
    with pytest.raises(gcore.PermissionDeniedError):
        client.cloud.projects.create(name="not-allowed")
    # A project key sees only its own project.
    assert [p.id for p in client.cloud.projects.list().results] == [client.cloud_project_id]
    task = projects.delete(project_id=made.id)
    assert admin_client.cloud.tasks.get(task.tasks[0]).state == "FINISHED"
    with pytest.raises(gcore.NotFoundError):
        projects.get(project_id=made.id)
    with pytest.raises(gcore.BadRequestError):
        projects.delete(project_id=1)  # the default project stays
    with pytest.raises(gcore.BadRequestError):
        projects.create(name="x")


def test_regions(client) -> None:
    regions = client.cloud.regions.list()
    assert regions.count == 1 and regions.results[0].id == 1
    assert client.cloud.regions.get(region_id=1).display_name == "Luxembourg-2"
    assert client.cloud.regions.list(display_name="luxembourg-2").count == 1
    with pytest.raises(gcore.NotFoundError):
        client.cloud.regions.get(region_id=42)


def test_retried_project_create_makes_one_project(server) -> None:
    import httpx

    from tests.conftest import ADMIN_TOKEN

    headers = {"Authorization": f"APIKey {ADMIN_TOKEN}", "x-stainless-retry-count": "0"}
    body = {"name": "retried-project"}
    first = httpx.post(f"{server.url}/cloud/v1/projects", json=body, headers=headers)
    again = httpx.post(
        f"{server.url}/cloud/v1/projects", json=body, headers={**headers, "x-stainless-retry-count": "1"}
    )
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    listed = httpx.get(f"{server.url}/cloud/v1/projects", params={"name": "retried-project"}, headers=headers)
    assert listed.json()["count"] == 1
