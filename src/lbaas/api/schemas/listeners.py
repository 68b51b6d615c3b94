"""Bodies of the listener endpoints, and of the listeners nested in an LB create."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import Field, StringConstraints, field_validator

from lbaas.api.params import NotBool
from lbaas.api.schemas.common import Body, Name
from lbaas.api.schemas.pools import PoolCreate
from lbaas.domain.enums import ListenerProtocol

USERNAME_PATTERN = r"^[a-zA-Z0-9][a-zA-Z 0-9._\-]{1,30}[a-zA-Z0-9._]$"

Timeout = Annotated[int, Field(ge=0, le=86_400_000), NotBool]
Port = Annotated[int, Field(ge=1, le=65535), NotBool]
ConnectionLimit = Annotated[int, Field(ge=-1, le=1_000_000), NotBool]


class UserListItem(Body):
    username: Annotated[str, StringConstraints(pattern=USERNAME_PATTERN)]
    encrypted_password: Annotated[str, StringConstraints(min_length=1, max_length=128)]


class ListenerFields(Body):
    """What a standalone and a nested listener create share."""

    name: Name
    protocol: ListenerProtocol
    protocol_port: Port
    allowed_cidrs: list[str] | None = Field(default=None, max_length=100)
    connection_limit: ConnectionLimit = 100_000
    insert_x_forwarded: bool = False
    # "" = no default certificate, only SNI ones.
    secret_id: Literal[""] | UUID = None
    sni_secret_id: list[UUID] = None
    timeout_client_data: Timeout | None = None
    timeout_member_connect: Timeout | None = None
    timeout_member_data: Timeout | None = None
    user_list: list[UserListItem] = Field(default=None, max_length=3)


class ListenerCreate(ListenerFields):
    load_balancer_id: UUID
    default_pool_id: UUID = None


class NestedPoolCreate(PoolCreate):
    """A pool nested in a listener of an LB create: its parents are implied."""

    @field_validator("listener_id", "load_balancer_id", mode="before")
    @classmethod
    def _implied(cls, value: Any) -> Any:
        # Defaults are not validated, so this only sees a value the client sent.
        raise ValueError("Extra inputs are not permitted")


class NestedListenerCreate(ListenerFields):
    """An item of an LB create's ``listeners``, with at most one pool."""

    pools: list[NestedPoolCreate] = Field(default=None, max_length=1)


class ListenerPatch(Body):
    """PATCH v2: every field optional; only the fields sent change; null clears the nullable ones."""

    admin_state_up: bool = None
    allowed_cidrs: list[str] | None = Field(default=None, max_length=100)
    connection_limit: ConnectionLimit = None
    name: Name = None
    secret_id: UUID | None = None
    sni_secret_id: list[UUID] | None = None
    timeout_client_data: Timeout | None = None
    timeout_member_connect: Timeout | None = None
    timeout_member_data: Timeout | None = None
    user_list: list[UserListItem] | None = Field(default=None, max_length=3)


class ListenerRename(Body):
    """The deprecated v1 PATCH: a synchronous rename."""

    name: Name
