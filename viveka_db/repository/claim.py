"""``claim_batch``: a work queue on a table, safe for any number of concurrent workers.

Each worker, inside its own transaction, claims up to ``size`` rows with ``SELECT ... FOR
UPDATE SKIP LOCKED``: rows another worker has claimed (locked) and not yet released are
skipped rather than waited for, so concurrent workers never get the same row and never
queue behind each other. The worker then does the work and marks or deletes the rows in
the same transaction; its commit releases them. A worker that dies mid-batch loses its
connection, its transaction rolls back, and the rows become claimable again.

SQLite has one writer at a time: a claim takes the database's write lock, so workers
claim in turn (each waits for the previous worker's commit) and, as the previous claims
are committed by then, still never get the same row.
"""

from __future__ import annotations

from viveka_db.decorator.transactional import transactional
from viveka_db.repository.base import T
from viveka_db.repository.limits import check_int
from viveka_db.repository.query import Query, QueryRepository
from viveka_db.repository.row_locks import always_locking

__all__ = ["ClaimRepository"]


class ClaimRepository(QueryRepository[T]):
    """``claim_batch``."""

    @always_locking("update_skip_locked")
    @transactional
    async def claim_batch(self, size: int, query: Query | None = None) -> list[T]:
        """Up to ``size`` entities that ``query`` selects (default: every visible one),
        locked for the current transaction, skipping rows other transactions hold.

        Rows come in ``query``'s order, then primary-key order (oldest first for
        generated keys). Needs a transaction that is not read-only (the locks last until
        it ends): outside one it raises :class:`~viveka_db.NoTransactionError`, in
        ``read_only`` work :class:`~viveka_db.ReadOnlyTransactionError`. ``size`` runs from
        1 to ``max_page_size``.
        """
        check_int("size", size, 1, self.max_page_size)
        base = self._statement_for(query)  # a Spec or a statement; None: every visible entity
        stmt = base.order_by(*self._mapper.primary_key).limit(size)  # after query's own order
        return await self._fetch_entities(stmt, None, "update_skip_locked")
