"""Bodies of the emulator's admin API (``/lbaas/v1/...``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from lbaas.api.schemas.common import Body

Count = Annotated[int, Field(ge=1, le=1_000_000)]
Probability = Annotated[float, Field(gt=0, le=1)]
Seed = Annotated[int, Field(ge=0, le=2**62)]
Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
Regex = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
TaskType = Annotated[str, StringConstraints(min_length=1, max_length=64)]
RawHealth = Literal["UP", "DOWN", "DRAIN", "MAINT", "NO_CHECK"]


class ResetBody(Body):
    """Empty (or no body): reset everything. ``project_id``: only that project."""

    project_id: int | None = None


class _Scoped(Body):
    project_id: int | None = Field(None, description="Only this project (default: any).")
    probability: Probability | None = Field(None, description="Fire with this chance per match.")
    seed: Seed | None = Field(None, description="Makes the probability draws reproducible.")


class HttpFault(_Scoped):
    """Answer matching Gcore API requests with an error before they reach any route."""

    kind: Literal["http"]
    status: int = Field(..., description="408, 409, 429 or 500-599.")
    path_regex: Regex = Field(".*", description="Searched in the request path (Python re).")
    method: Method | None = None
    count: Count | None = Field(1, description="Injections before the fault is spent; null: no limit.")
    retry_after: Annotated[float, Field(ge=0, le=3600)] | None = Field(
        None, description="Retry-After seconds (429 sends 1 unless given)."
    )
    message: Annotated[str, StringConstraints(max_length=2000)] | None = None


class LatencyFault(_Scoped):
    """Delay matching Gcore API requests, then serve them."""

    kind: Literal["latency"]
    latency_ms: Annotated[int, Field(ge=0, le=600_000)]
    latency_max_ms: Annotated[int, Field(ge=0, le=600_000)] | None = Field(
        None, description="With it, a random delay in [latency_ms, latency_max_ms]."
    )
    path_regex: Regex = ".*"
    method: Method | None = None
    count: Count | None = Field(
        None, description="Delayed requests before the fault is spent; null: no limit."
    )


class TaskFault(_Scoped):
    """Fail matching tasks through the provider: the task and its resources end in ERROR."""

    kind: Literal["task"]
    task_type: TaskType | None = Field(None, description="Gcore task_type, e.g. create_lbpool; null: any.")
    count: Count | None = Field(1, description="Tasks to fail; null: no limit.")
    error: Annotated[str, StringConstraints(min_length=1, max_length=2000)] = (
        "injected failure (lbaas emulator)"
    )


class HealthFault(Body):
    """Report a member, or every member of a pool, with this raw health (``UP`` recovers)."""

    kind: Literal["health"]
    member_id: str | None = None
    pool_id: str | None = None
    status: RawHealth


FaultSpec = Annotated[HttpFault | LatencyFault | TaskFault | HealthFault, Field(discriminator="kind")]


class TimingRule(Body):
    """When new tasks run: ``immediate``, ``delay`` (delay_ms, optional delay_max_ms and seed),
    ``polls`` or ``hold``."""

    mode: Literal["immediate", "delay", "polls", "hold"]
    project_id: Annotated[int, Field(ge=1)] | None = Field(
        None, description="Only this project (default any)."
    )
    task_type: TaskType | None = Field(None, description="Only this Gcore task_type (default any).")
    delay_ms: Annotated[int, Field(ge=0, le=3_600_000)] | None = None
    delay_max_ms: Annotated[int, Field(ge=0, le=3_600_000)] | None = None
    polls: Annotated[int, Field(ge=1, le=10_000)] | None = Field(
        None, description="The poll of GET /cloud/v1/tasks/{id} that reads FINISHED."
    )
    seed: Seed | None = None


class ReleaseBody(Body):
    """Empty: release every held task. ``project_id``: only that project's."""

    project_id: int | None = None


class JournalSettings(Body):
    size: Annotated[int, Field(ge=0, le=100_000)] = Field(..., description="Requests kept; 0: off.")


class ApiKeyBody(Body):
    name: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None
