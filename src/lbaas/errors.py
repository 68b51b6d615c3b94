"""The one exception tree of lbaas.

Services and the domain raise these; ``lbaas.api.errors`` turns them into
Gcore's error body (``exception_class``, ``message``, ``request_id`` and,
for validation, ``invalid_fields``) exactly once, at the edge.
"""

from __future__ import annotations

from typing import Any


class LbaasError(Exception):
    """Base of every error lbaas raises on purpose."""

    status_code = 500
    exception_class = "InternalServerError"
    should_retry: bool | None = None

    def __init__(self, message: str | None = None, **extra: Any) -> None:
        self.message = message or (self.__doc__ or self.__class__.__name__).strip()
        self.extra = extra
        super().__init__(self.message)


class ValidationFailed(LbaasError):
    """Validation Error."""

    status_code = 400
    exception_class = "ValidationError"

    def __init__(self, message: str | None = None, *, fields: dict[str, list[str]] | None = None) -> None:
        self.invalid_fields: dict[str, list[str]] = fields or {}
        if message is None:
            message = "Validation Error: " + repr(self.invalid_fields)
        super().__init__(message)

    @classmethod
    def field(cls, name: str, message: str) -> ValidationFailed:
        """One invalid field, with a message that names it."""
        return cls(f"Validation Error: {name}: {message}", fields={name: [message]})


class QuotaExceeded(LbaasError):
    """Quota limit exceeded."""

    status_code = 400
    exception_class = "QuotaLimitExceed"


class NotAuthenticated(LbaasError):
    """Authentication credentials were not provided."""

    status_code = 401
    exception_class = "NotAuthenticated"


class Forbidden(LbaasError):
    """You do not have permission to perform this action."""

    status_code = 403
    exception_class = "ForbiddenError"


class NotFound(LbaasError):
    """Resource could not be found."""

    status_code = 404
    exception_class = "NotFoundError"

    @classmethod
    def of(cls, kind: str, ident: object) -> NotFound:
        """The Gcore message style: ``<Type> <id> could not be found``."""
        return cls(f"{kind} {ident} could not be found")


class Conflict(LbaasError):
    """The resource is in a state that does not allow this request."""

    status_code = 409
    exception_class = "ConflictError"
    # A conflict we raise is never transient: a retry would meet the same state.
    should_retry = False


class PayloadTooLarge(LbaasError):
    """Request body too large."""

    status_code = 413
    exception_class = "RequestEntityTooLarge"


class ProviderError(LbaasError):
    """The data plane could not apply the change."""

    status_code = 500
    exception_class = "ProviderError"
    #: True when trying again later can help (a reload that did not take, a busy
    #: socket); the task engine then retries with back-off a bounded number of times.
    retriable = False


class TransientProviderError(ProviderError):
    """The data plane could not apply the change this time; a retry may succeed."""

    retriable = True
