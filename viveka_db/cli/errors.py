"""One-line, secret-free descriptions of whatever went wrong."""

from __future__ import annotations

from collections.abc import Iterable

from viveka_db.errors import VivekaDbError

__all__ = ["CliError", "describe_error", "scrub"]


class CliError(Exception):
    """A failure whose message is already the one line to show the user."""


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (longest first) replaced by ``***``."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def describe_error(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """The first line of the most specific message ``exc`` carries, without secrets.

    SQLAlchemy wraps driver errors (and appends the SQL and a link); the driver's own
    message is the useful part. Timeouts and errors with no text get their type name.
    """
    from sqlalchemy.exc import DBAPIError

    cause: BaseException = exc
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        cause = exc.orig
        if cause.__cause__ is not None:  # SQLAlchemy's async adapters wrap the driver's error
            cause = cause.__cause__
    if isinstance(cause, TimeoutError) and not str(cause):
        return "timed out"
    message = str(cause).strip()
    if isinstance(cause, ModuleNotFoundError) and cause.name:
        message = f"no module named {cause.name!r} (is it on the path? run from your project root)"
    first = message.splitlines()[0].strip() if message else ""
    name = type(cause).__name__
    worded = isinstance(cause, CliError | VivekaDbError)  # our own messages need no type name
    line = first if worded else (f"{name}: {first}" if first else name)
    return scrub(line, secrets)
