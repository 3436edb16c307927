"""Which HTTP answer a framework error deserves: status, JSON body and headers.

Framework-neutral (no Starlette import), so every web integration maps errors the same
way; :func:`viveka_db.integrations.fastapi.add_exception_handlers` installs it in FastAPI.
Bodies never carry bound values: a constraint violation names the constraint and its
columns, not the value that collided (it may be an e-mail address or a token).
"""

from __future__ import annotations

import logging
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from viveka_db.dialects.connection import ConnectionProblem, connection_problem
from viveka_db.errors import (
    CheckViolationError,
    ConstraintViolationError,
    DuplicateKeyError,
    EntityNotFoundError,
    ForeignKeyViolationError,
    NoTenantError,
    NotNullViolationError,
    PaginationError,
    SchemaError,
    TenantMismatchError,
    UnknownFieldError,
)

__all__ = ["HANDLED_ERRORS", "ErrorLog", "HttpError", "http_error_for"]

logger = logging.getLogger("viveka_db.http")

DEFAULT_RETRY_AFTER = 5
"""Seconds a client is asked to wait after a 503 (a pool frees up, a database restarts)."""

HANDLED_ERRORS: tuple[type[Exception], ...] = (
    EntityNotFoundError,
    ConstraintViolationError,
    NoTenantError,
    TenantMismatchError,
    PaginationError,
    UnknownFieldError,
    SchemaError,
    PoolTimeoutError,
    DBAPIError,
    ConnectionError,
    socket.gaierror,
)
"""The exception classes :func:`http_error_for` may answer (handlers are registered for them)."""

_CONSTRAINT_DETAIL: list[tuple[type[ConstraintViolationError], str]] = [
    (DuplicateKeyError, "a row with the same unique value already exists"),
    (ForeignKeyViolationError, "a referenced row does not exist, or the row is still referenced"),
    (NotNullViolationError, "a required value is missing"),
    (CheckViolationError, "a value is outside what the database accepts"),
]

LOG_INTERVAL = 60.0
"""Seconds before an :class:`ErrorLog` logs the same cause again."""


@dataclass(frozen=True)
class HttpError:
    """The response for one error."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict[str, str])
    cause: str | None = None
    """What the server log should say (never sent to the client), or ``None``."""
    cause_key: str = ""
    """Groups repeats of one cause (for :class:`ErrorLog`)."""


class ErrorLog:
    """Logs each answer's cause on ``viveka_db.http``, once per :data:`LOG_INTERVAL` and key.

    One per installed set of handlers: an outage logs one line a minute, not one per
    request, and each application logs its own first occurrence.
    """

    def __init__(self, interval: float = LOG_INTERVAL) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}

    def log(self, answer: HttpError) -> None:
        if answer.cause is None:
            return
        now = time.monotonic()
        last = self._last.get(answer.cause_key)
        if last is not None and now - last < self.interval:
            return
        self._last[answer.cause_key] = now
        logger.error("answered %d: %s", answer.status, answer.cause)


def _unavailable(exc: BaseException) -> ConnectionProblem | None:
    """Why the database cannot serve right now (not a bad statement), or ``None``."""
    problem = connection_problem(exc)
    if problem is None and isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return ConnectionProblem("unreachable", type(exc).__name__)
    return problem


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
    if isinstance(exc, NoTenantError):
        # the request's tenant resolver found no tenant: the caller may not see tenant data
        return HttpError(403, {"detail": "this request is not bound to a tenant", "error": error})
    if isinstance(exc, TenantMismatchError):
        # generic on purpose: naming the row's tenant would tell the caller the row exists
        detail = "the current tenant may not change this row"
        return HttpError(403, {"detail": detail, "error": error})
    if isinstance(exc, PaginationError | UnknownFieldError):
        return HttpError(422, {"detail": str(exc), "error": error})
    if isinstance(exc, SchemaError):
        detail = (
            "the database schema does not match this service (a table or column is missing); "
            "the operator must apply the migrations"
        )
        return HttpError(500, {"detail": detail, "error": error}, {}, str(exc), str(exc))
    problem = None if isinstance(exc, PoolTimeoutError) else _unavailable(exc)
    if isinstance(exc, PoolTimeoutError) or problem is not None:
        reason = "every database connection is busy"
        cause: str | None = None
        if problem is not None:
            reason = "the database cannot be reached"
            cause = f"{problem.description}; {problem.fix}"
        return HttpError(
            503,
            {"detail": f"service temporarily unavailable: {reason}; retry later", "error": error},
            {"Retry-After": str(retry_after)},
            cause,
            "" if problem is None else f"{problem.kind}:{problem.code}",
        )
    return None
