"""``stream``: iterate over a large result with bounded memory.

On PostgreSQL and SQLite rows come from a server-side cursor (``stream_results`` with
``yield_per``: asyncpg's cursor inside the transaction, ``fetchmany`` on SQLite),
``chunk_size`` at a time, and relationships in ``load=`` are loaded per chunk. MySQL and
MariaDB cannot send another query on a connection while an unbuffered result is open (the
driver would silently drain it into memory), which rules out per-chunk relationship loads
and any query in the loop body; there the stream reads keyset chunks instead: ``LIMIT
chunk_size`` ordered by the statement's order plus the primary key, each chunk starting
after the last row of the previous one (as :meth:`get_slice` does), so it costs the same
at row 1,000,000 as at row 1. Entities the caller has let go of are not kept by the
session's weak identity map. So memory follows ``chunk_size``, not the size of the result.

Inside a transaction the stream uses its session and sees its uncommitted writes. Read-only
work runs in autocommit, where PostgreSQL has no cursors: there the stream wraps its cursor
in ``BEGIN READ ONLY`` ... ``COMMIT`` on the same connection (the primary's or a replica's),
and a connection that cannot end that block is discarded, never pooled. Outside
one (a worker, a script) it opens a read-only transaction of its own, holds it for the
iteration and closes it when the iteration ends; the entities are then detached. Stop
early with ``async with contextlib.aclosing(repo.stream(...))`` to release the
connection at once rather than when the iterator is garbage-collected.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from viveka_db.compat import has_limit, order_by_clauses
from viveka_db.context.db_context import get_current_session
from viveka_db.context.scope import run_uncancellable
from viveka_db.dialects import adapter_for
from viveka_db.dialects.abandoned import OPEN_BLOCK_KEY
from viveka_db.repository.base import T
from viveka_db.repository.limits import check_int
from viveka_db.repository.loading import LoadSpec
from viveka_db.repository.query import Query, QueryRepository
from viveka_db.repository.row_locks import LockMode, lock_rows, require_lock_scope
from viveka_db.repository.sorting import keyset_after, order_clauses, resolve_sort
from viveka_db.session.db_session import DatabaseSessionFactory
from viveka_db.transaction.unit_of_work import UnitOfWork

__all__ = ["StreamRepository"]


class StreamRepository(QueryRepository[T]):
    """``stream``."""

    def stream(
        self,
        query: Query | None = None,
        *,
        chunk_size: int = 1000,
        load: LoadSpec = None,
        lock: LockMode | None = None,
    ) -> AsyncIterator[T]:
        """The entities ``query`` selects (default: every visible one, in key order), as an
        async iterator holding about ``chunk_size`` of them in memory at a time.

        ``chunk_size`` runs from 1 to ``max_page_size`` (checked here, before any SQL).
        ``lock=`` locks the rows as they are read, until the caller's transaction ends (it
        needs one: the stream then never opens a transaction of its own).
        """
        check_int("chunk_size", chunk_size, 1, self.max_page_size)
        if lock is not None:
            require_lock_scope(self, lock, "stream()")
        stmt = self._statement_for(query, ordered=True)
        loaded = lock_rows(self._with_load(stmt, load), lock, self.model)  # checks load= first
        return self._iterate(stmt, loaded, chunk_size)

    async def _iterate(
        self, stmt: Select[Any], loaded: Select[Any], chunk_size: int
    ) -> AsyncIterator[T]:
        session = get_current_session(self.data_source)
        if session is not None:
            async for entity in self._rows(session, stmt, loaded, chunk_size):
                yield entity
            return
        # A unit of work of its own, not made current (the consumer's code runs between
        # items). A real transaction on the write engine: the read engine may run in
        # autocommit, where PostgreSQL has no cursors; writes are refused as in any
        # read-only transaction.
        uow = UnitOfWork.open(self.data_source, read_only=True, read_engine=False, name="stream")
        try:
            async for entity in self._rows(uow.scope.session, stmt, loaded, chunk_size):
                yield entity
            await uow.commit()
        finally:
            await uow.release()

    async def _rows(
        self, session: AsyncSession, stmt: Select[Any], loaded: Select[Any], chunk_size: int
    ) -> AsyncIterator[Any]:
        conn = await session.connection()
        adapter = adapter_for(conn.dialect.name)
        if adapter.cursor_blocks_connection:
            async for entity in self._keyset_chunks(session, stmt, loaded, chunk_size):
                yield entity
            return
        block = adapter.cursor_transaction if self._in_autocommit(conn) else None
        if block is not None:  # read-only work: a read-only transaction for the cursor
            conn.info[OPEN_BLOCK_KEY] = True  # the pool ends it if the iterator is abandoned
            await conn.exec_driver_sql(block[0])
        try:
            result = await session.stream_scalars(loaded.execution_options(yield_per=chunk_size))
            try:
                async for partition in result.partitions():
                    for entity in partition:
                        yield entity
            finally:
                if not conn.closed:  # else the pool ended the work already
                    await run_uncancellable(result.close())
        finally:
            if block is not None:
                await run_uncancellable(_end_block(conn, block[1]))

    def _in_autocommit(self, conn: AsyncConnection) -> bool:
        """Whether ``conn`` is a read engine's (the primary's or a replica's): autocommit."""
        factory = DatabaseSessionFactory.get_instance(self.data_source)
        return conn.engine is not factory.engine and factory.shared_connection is None

    async def _keyset_chunks(
        self, session: AsyncSession, stmt: Select[Any], loaded: Select[Any], chunk_size: int
    ) -> AsyncIterator[Any]:
        if has_limit(stmt):  # the caller bounded the result already: one buffered read
            result = await session.scalars(loaded)
            for entity in result.unique().all() if loaded is not stmt else result.all():
                yield entity
            return
        ordering = list(order_by_clauses(stmt))
        keys = resolve_sort(self.model, self._mapper, ordering)
        base = loaded.order_by(None)
        after: list[Any] | None = None
        while True:
            chunk_stmt = base if after is None else base.where(keyset_after(keys, after))
            chunk_stmt = chunk_stmt.order_by(*order_clauses(keys)).limit(chunk_size)
            result = await session.scalars(chunk_stmt)
            chunk = list(result.unique().all() if loaded is not stmt else result.all())
            for entity in chunk:
                yield entity
            if len(chunk) < chunk_size:
                return
            last = chunk[-1]
            after = [getattr(last, key.key) for key in keys]
            del chunk, last


async def _end_block(conn: AsyncConnection, end_sql: str) -> None:
    """End the cursor's transaction block; a connection that cannot is discarded.

    The read engine does not reset connections returning to its pool (they are in
    autocommit), so one left inside the block would hand an open transaction, and the
    locks of its ``SELECT``, to the next reader.
    """
    if conn.invalidated or conn.closed:
        return  # invalidated by a cancelled statement, or back in the pool, which ended it
    try:
        await conn.exec_driver_sql(end_sql)
    except Exception:
        await conn.invalidate()
        raise
    conn.info.pop(OPEN_BLOCK_KEY, None)
