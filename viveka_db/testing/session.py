"""The session class of the ``db_session`` fixture."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from viveka_db.context.scope import TransactionScope

__all__ = ["RollbackSession"]


class RollbackSession(AsyncSession):
    """An ``AsyncSession`` joined to a test's outer transaction, which is rolled back later.

    ``commit()`` releases a SAVEPOINT (nothing reaches the database) and then runs the
    after-commit hooks registered so far, as a real commit would: deferred cache writes and
    evictions happen, so ``@cacheable`` behaviour can be tested inside ``db_session``.
    """

    scope: TransactionScope | None = None

    async def commit(self) -> None:
        await super().commit()
        if self.scope is not None:
            await self.scope.hooks.run_after_commit()
