"""Bodies of the secret endpoints (TLS certificate bundles)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from lbaas.api.params import Int32, UtcDateTime
from lbaas.api.schemas.common import Body

SecretName = Annotated[str, StringConstraints(min_length=1, max_length=255)]
# The columns hold 16 characters; longer user metadata would fail on PostgreSQL.
Meta = Annotated[str, StringConstraints(min_length=1, max_length=16)]
SecretType = Literal["certificate", "opaque", "passphrase", "private", "public", "symmetric"]


class TlsPayload(Body):
    certificate: str
    certificate_chain: str
    private_key: str


class SecretCreateV2(Body):
    name: SecretName
    payload: TlsPayload
    expiration: UtcDateTime | None = None


class SecretCreateV1(Body):
    """The deprecated create: a base64 PKCS#12 archive plus Barbican-style metadata."""

    name: SecretName
    payload: str
    payload_content_encoding: Literal["base64"]
    payload_content_type: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    secret_type: SecretType
    algorithm: Meta | None = None
    bit_length: Int32 | None = Field(default=None, gt=0)
    expiration: UtcDateTime | None = None
    mode: Meta | None = None
