"""A session for one unit of work that joins the current transaction or owns a new one.

Framework-neutral: the FastAPI dependency is a thin wrapper over :func:`unit_of_work`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from viveka_db.context.db_context import DEFAULT, active_scope
from viveka_db.context.scope import TransactionScope
from viveka_db.session.db_session import DatabaseSessionFactory
from viveka_db.telemetry.transaction import transaction_span
from viveka_db.transaction.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["unit_of_work"]


@asynccontextmanager
async def unit_of_work(data_source: str = DEFAULT) -> AsyncGenerator[AsyncSession, None]:
    """Yield the current task's session, or own a new one for the ``async with`` block.

    Inside a request handled by ``DbMiddleware`` (or any transaction of this task) it yields
    that session and leaves commit and close to its owner: one session per request, never
    two. Otherwise it makes a new session current for the block (so ``@transactional`` code
    and repositories called inside join it) and, on leaving, commits (then runs the hooks)
    or rolls back on an exception or when an inner call marked it rollback-only.

    Under the ``db_session`` test fixture, whose session every task of the test may use, a
    request still owns its unit of work (a savepoint of the test's transaction), as it
    would in production: a failed request undoes only its own writes.
    """
    existing = active_scope(data_source)
    if existing is not None and not _shared_by_a_test(existing):
        yield existing.session
        return
    with transaction_span(
        "unit_of_work", propagation="REQUIRED", read_only=False, data_source=data_source
    ) as span:
        async with UnitOfWork.open(data_source, name="unit_of_work", span=span) as scope:
            yield scope.session


def _shared_by_a_test(scope: TransactionScope) -> bool:
    """Whether ``scope`` is a test's own session, shared with every task while the test
    shares its connection (a request then opens a unit of work of its own)."""
    if scope.owner is not None:
        return False
    factory = DatabaseSessionFactory.instances().get(scope.data_source)
    return factory is not None and factory.shared_connection is not None
