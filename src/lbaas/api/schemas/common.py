"""Request-body building blocks shared by every resource (Pydantic v2).

Bodies forbid unknown fields, so a typo is a 400 that names the field
rather than a silently ignored setting. Responses are plain dicts built by
the services: the SDK's types are the contract, checked by the contract
tests, and skipping response-model validation keeps the hot paths fast.
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from lbaas.api.params import Int32, NotBool

NAME_PATTERN = r"^[a-zA-Z0-9][a-zA-Z 0-9._\-]{1,61}[a-zA-Z0-9._]$"
TOPIC_PATTERN = r"^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])*)*$"

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
Uuid = UUID


class Body(BaseModel):
    """Base of request bodies: unknown fields are errors.

    Optional is not nullable. A field that Gcore's schema lets a client leave out
    but not send as null is declared with its type alone and a default of None
    (``name: Name = None``): Pydantic never validates a default, so leaving the
    field out works (and ``model_dump(exclude_unset=True)`` leaves it out), while
    an explicit null is a 400 naming the field. A field that may be null says so
    in its type (``tags: dict[str, str | None] | None = None``) and keeps the
    null meaning the spec documents. ``tests/api/test_nulls.py`` holds every
    operation to Gcore's OpenAPI subset (and SDK 0.59.0 where the subset has no entry).
    """

    model_config = ConfigDict(extra="forbid")


class RetentionPolicy(Body):
    period: Annotated[int, Field(gt=0, le=1825), NotBool] | None = Field(...)


class Logging(Body):
    destination_region_id: Int32 | None = None
    enabled: bool = False
    retention_policy: RetentionPolicy | None = None
    topic_name: (
        Annotated[str, StringConstraints(min_length=1, max_length=223, pattern=TOPIC_PATTERN)] | None
    ) = None


class NewFloatingIp(Body):
    source: Literal["new"]


class ExistingFloatingIp(Body):
    source: Literal["existing"]
    existing_floating_id: UUID


FloatingIpChoice = Annotated[NewFloatingIp | ExistingFloatingIp, Field(discriminator="source")]


# Tag maps (CreateTagsSerializer / UpdateTagsSerializer); keys and values are checked by lbaas.domain.tags.
TagMap = dict[str, str]
TagPatchMap = dict[str, str | None]
MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=255)]
