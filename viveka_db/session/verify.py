"""The start-up check of one data source: every engine answers, with these credentials.

A wrong password, role, host, port or database name otherwise shows only when the first
request fails. :func:`verify_targets` makes one round trip on the primary and on each
replica, concurrently, and raises one :class:`~viveka_db.errors.ConfigurationError` that
names the data source, each failing engine (URL masked) and the cause in the library's own
words (see :mod:`viveka_db.dialects.connection`), never a password or a driver's message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from viveka_db.config.sources import database_section
from viveka_db.config.urls import mask_url
from viveka_db.dialects.connection import connection_problem, driver_error_name
from viveka_db.errors import ConfigurationError
from viveka_db.session.probe import probe_engine

__all__ = ["DEFAULT_VERIFY_TIMEOUT", "Target", "verify_targets"]

Target = tuple[str, AsyncEngine, URL]
"""``(role, engine, url)``: ``primary``, or ``replica 1``, ``replica 2``..."""

DEFAULT_VERIFY_TIMEOUT = 10.0
"""Seconds each engine has to answer the start-up check."""


async def verify_targets(
    data_source: str,
    targets: Sequence[Target],
    *,
    timeout: float = DEFAULT_VERIFY_TIMEOUT,  # noqa: ASYNC109 - a bound for each engine
) -> None:
    """Raise :class:`ConfigurationError` unless every target answers ``SELECT 1``."""
    outcomes = await asyncio.gather(
        *(probe_engine(engine, timeout) for _, engine, _ in targets), return_exceptions=True
    )
    failures: list[tuple[str, URL, BaseException]] = [
        (role, url, outcome)
        for (role, _, url), outcome in zip(targets, outcomes, strict=True)
        if isinstance(outcome, BaseException)
    ]
    for _, _, outcome in failures:
        if not isinstance(outcome, Exception):
            raise outcome  # a cancellation, KeyboardInterrupt...
    if not failures:
        return
    section = database_section(data_source)
    causes = "; ".join(_describe(role, url, exc, timeout) for role, url, exc in failures)
    error = ConfigurationError(
        f"data source {data_source!r} failed its start-up check: {causes}. "
        f"(Set [{section}] verify_on_startup = false to start without this check.)"
    )
    raise error from failures[0][2]


def _describe(role: str, url: URL, exc: BaseException, timeout: float) -> str:
    where = f"{role} {mask_url(url)}"
    problem = connection_problem(exc)
    if problem is not None:
        return f"{where}: {problem.description}; {problem.fix}"
    if isinstance(exc, TimeoutError):
        return (
            f"{where}: no answer within {timeout:g}s; check host and port, and that the "
            "server is not overloaded"
        )
    return f"{where}: the check failed with {driver_error_name(exc)}"
