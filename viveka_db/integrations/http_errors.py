"""Which HTTP answer a framework error deserves: status, JSON body and headers.

Framework-neutral (no Starlette import), so every web integration maps errors the same
way; :func:`viveka_db.integrations.fastapi.add_exception_handlers` installs it in FastAPI.
Bodies never carry bound values: a constraint violation names the constraint and its
columns, not the value that collided (it may be an e-mail address or a token).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from viveka_db.errors import (
    CheckViolationError,
    ConstraintViolationError,
    DuplicateKeyError,
    EntityNotFoundError,
    ForeignKeyViolationError,
    NotNullViolationError,
    PaginationError,
    UnknownFieldError,
)

__all__ = ["HANDLED_ERRORS", "HttpError", "http_error_for"]

DEFAULT_RETRY_AFTER = 5
"""Seconds a client is asked to wait after a 503 (a pool frees up, a database restarts)."""

HANDLED_ERRORS: tuple[type[Exception], ...] = (
    EntityNotFoundError,
    ConstraintViolationError,
    PaginationError,
    UnknownFieldError,
    PoolTimeoutError,
    OperationalError,
    InterfaceError,
    ConnectionRefusedError,
)
"""The exception classes :func:`http_error_for` may answer (handlers are registered for them)."""

_CONSTRAINT_DETAIL: list[tuple[type[ConstraintViolationError], str]] = [
    (DuplicateKeyError, "a row with the same unique value already exists"),
    (ForeignKeyViolationError, "a referenced row does not exist, or the row is still referenced"),
    (NotNullViolationError, "a required value is missing"),
    (CheckViolationError, "a value is outside what the database accepts"),
]

_UNREACHABLE_MARKERS = (
    "connection refused",
    "connect call failed",
    "can't connect",
    "could not connect",
    "lost connection",
    "server has gone away",
    "connection was closed",
    "connection is closed",
    "connection reset",
    "cannot connect now",  # PostgreSQL starting up / shutting down
    "the database system is",
    "unable to open database file",
)


@dataclass(frozen=True)
class HttpError:
    """The response for one error."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict[str, str])


def _unreachable(exc: BaseException) -> bool:
    """Whether a driver error means "no database right now" (not a bad statement)."""
    if isinstance(exc, ConnectionRefusedError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    if isinstance(orig, OSError | ConnectionError):
        return True
    text = str(orig if orig is not None else exc).lower()
    return any(marker in text for marker in _UNREACHABLE_MARKERS)


def http_error_for(
    exc: BaseException, *, retry_after: int = DEFAULT_RETRY_AFTER
) -> HttpError | None:
    """The answer for ``exc``, or ``None`` when it is a server error (let it become a 500)."""
    error = type(exc).__name__
    if isinstance(exc, EntityNotFoundError):
        return HttpError(404, {"detail": str(exc), "error": error, "entity": exc.entity.__name__})
    if isinstance(exc, ConstraintViolationError):
        detail = next(
            (text for kind, text in _CONSTRAINT_DETAIL if isinstance(exc, kind)),
            "the change conflicts with a database constraint",
        )
        body: dict[str, Any] = {
            "detail": detail,
            "error": error,
            "constraint": exc.constraint,
            "columns": list(exc.columns),
        }
        return HttpError(409, body)
    if isinstance(exc, PaginationError | UnknownFieldError):
        return HttpError(422, {"detail": str(exc), "error": error})
    unavailable = isinstance(exc, PoolTimeoutError) or _unreachable(exc)
    if unavailable:
        reason = (
            "every database connection is busy"
            if isinstance(exc, PoolTimeoutError)
            else "the database cannot be reached"
        )
        return HttpError(
            503,
            {"detail": f"service temporarily unavailable: {reason}; retry later", "error": error},
            {"Retry-After": str(retry_after)},
        )
    return None
