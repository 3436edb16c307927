"""``lock=`` on every read: locking reads serialise, ``update_nowait`` fails at once, locks
are refused where they cannot hold. On SQLite a locking read takes the write lock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import select

from tests.locks.models import Job, JobRepo, JobStatus, Owner
from viveka_db import (
    DatabaseSessionFactory,
    DbRepo,
    LockTimeoutError,
    NoTransactionError,
    ReadOnlyTransactionError,
    after_commit,
    transactional,
)

jobs = JobRepo()
owners = DbRepo(Owner)


async def _seed(n: int = 3) -> list[Job]:
    owner = await owners.save(Owner(name="ann"))
    return await jobs.insert_all([Job(balance=0, owner_id=owner.id) for _ in range(n)])


async def test_locking_reads_of_one_row_serialise(db: DatabaseSessionFactory) -> None:
    """The second locking read waits for the first transaction's commit, so no update is lost."""
    (job,) = await _seed(1)
    events: list[str] = []
    first_locked = asyncio.Event()

    @transactional
    async def first() -> None:
        locked = await jobs.get_by_id(job.id, lock="update")
        assert locked is not None
        first_locked.set()
        await asyncio.sleep(0.4)  # the second transaction tries meanwhile
        locked.balance += 1
        events.append("first ends")  # then its boundary commits

    @transactional
    async def second() -> None:
        await first_locked.wait()
        locked = await jobs.get_by_id(job.id, lock="update")
        assert locked is not None
        events.append(f"second locked, saw {locked.balance}")
        locked.balance += 1

    await asyncio.gather(first(), second())
    assert events == ["first ends", "second locked, saw 1"]
    stored = await jobs.get_by_id(job.id)
    assert stored is not None and stored.balance == 2


async def _hold_then_contend(
    lock_with: Callable[[], Awaitable[object]], contend: Callable[[], Awaitable[object]]
) -> tuple[BaseException | None, float]:
    """Run ``lock_with`` in a transaction that stays open while ``contend`` runs in another;
    what ``contend``'s transaction raised and how long it took."""
    locked, release = asyncio.Event(), asyncio.Event()

    @transactional
    async def holder() -> None:
        await lock_with()
        locked.set()
        await release.wait()

    @transactional
    async def contender() -> None:
        await contend()

    held = asyncio.ensure_future(holder())
    try:
        await locked.wait()
        started = time.monotonic()
        try:
            await contender()
        except Exception as exc:
            return exc, time.monotonic() - started
        return None, time.monotonic() - started
    finally:
        release.set()
        await held


async def test_update_nowait_fails_at_once(db: DatabaseSessionFactory) -> None:
    (job,) = await _seed(1)
    error, waited = await _hold_then_contend(
        lambda: jobs.get_by_id(job.id, lock="update"),
        lambda: jobs.get_by_id(job.id, lock="update_nowait"),
    )
    assert isinstance(error, LockTimeoutError), repr(error)
    assert isinstance(error, TimeoutError) and isinstance(error, sa_exc.OperationalError)
    assert waited < 2.0  # the servers would wait 30-50 s for the lock otherwise
    assert "lock not available" in str(error)


READS: dict[str, Callable[[Job, Any], Awaitable[object]]] = {
    "get_by_id": lambda job, lock: jobs.get_by_id(job.id, lock=lock),
    "get_or_raise": lambda job, lock: jobs.get_or_raise(job.id, lock=lock),
    "get_by_id+load": lambda job, lock: jobs.get_by_id(job.id, load=Job.owner, lock=lock),
    "get_all": lambda job, lock: jobs.get_all(lock=lock),
    "find_by": lambda job, lock: jobs.find_by(id=job.id, lock=lock),
    "find_all_by": lambda job, lock: jobs.find_all_by(status="pending", lock=lock),
    "find_by_field": lambda job, lock: jobs.find_by_field("id", job.id, lock=lock),
    "find_all_by_field": lambda job, lock: jobs.find_all_by_field(Job.status, "pending", lock=lock),
    "all": lambda job, lock: jobs.all(lock=lock),
    "all(query)": lambda job, lock: jobs.all(jobs.where(Job.id == job.id), lock=lock),
    "all(columns)": lambda job, lock: jobs.all(select(Job.id, Job.status), lock=lock),
    "first": lambda job, lock: jobs.first(lock=lock),
    "get_page": lambda job, lock: jobs.get_page(1, 10, lock=lock),
    "get_slice": lambda job, lock: jobs.get_slice(None, 10, lock=lock),
    "stream": lambda job, lock: _drain(jobs.stream(chunk_size=2, lock=lock)),
    "derived": lambda job, lock: jobs.find_by_status("pending", lock=lock),
    "derived+join": lambda job, lock: jobs.find_all_by_owner_name("ann", lock=lock),
    "project": lambda job, lock: jobs.project(JobStatus, lock=lock),
    "claim_batch": lambda job, lock: jobs.claim_batch(10),
}


async def _drain(iterator: Any) -> list[Any]:
    return [item async for item in iterator]


@pytest.mark.parametrize("read", list(READS))
async def test_every_read_takes_the_lock(db: DatabaseSessionFactory, read: str) -> None:
    """While a transaction holds rows through the read, another cannot lock them NOWAIT."""
    first, *_ = await _seed(3)
    error, _ = await _hold_then_contend(
        lambda: READS[read](first, "update"),
        lambda: jobs.get_by_id(first.id, lock="update_nowait"),
    )
    assert isinstance(error, LockTimeoutError), repr(error)


async def test_a_share_lock_blocks_writers_not_sharers(
    db: DatabaseSessionFactory, backend: str
) -> None:
    (job,) = await _seed(1)
    error, _ = await _hold_then_contend(
        lambda: jobs.get_by_id(job.id, lock="share"),
        lambda: jobs.get_by_id(job.id, lock="update_nowait"),
    )
    assert isinstance(error, LockTimeoutError)
    if backend != "sqlite":  # SQLite's only lock is its write lock: sharers wait too
        error, _ = await _hold_then_contend(
            lambda: jobs.get_by_id(job.id, lock="share"),
            lambda: jobs.all(jobs.where(Job.id == job.id), lock="share"),
        )
        assert error is None


async def test_skip_locked_leaves_out_rows_others_hold(
    db: DatabaseSessionFactory, backend: str
) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite has no row locks: see test_skip_locked_on_sqlite_waits_its_turn")
    first, *rest = await _seed(3)
    seen: list[int] = []

    async def skip() -> None:
        seen.extend(j.id for j in await jobs.all(lock="update_skip_locked"))

    error, _ = await _hold_then_contend(lambda: jobs.get_by_id(first.id, lock="update"), skip)
    assert error is None
    assert seen == [j.id for j in rest]


async def test_skip_locked_on_sqlite_waits_its_turn(
    db: DatabaseSessionFactory, backend: str
) -> None:
    """Documented SQLite behaviour: the write lock is taken in turn, nothing is skipped."""
    if backend != "sqlite":
        pytest.skip("SQLite only")
    created = await _seed(2)
    order: list[str] = []
    locked = asyncio.Event()

    @transactional
    async def holder() -> None:
        await jobs.get_by_id(created[0].id, lock="update")
        locked.set()
        await asyncio.sleep(0.3)
        after_commit(lambda: order.append("holder committed"))

    @transactional
    async def skipper() -> None:
        await locked.wait()
        found = await jobs.all(lock="update_skip_locked")
        order.append(f"skipper got {len(found)}")

    await asyncio.gather(holder(), skipper())
    assert order == ["holder committed", "skipper got 2"]


async def test_a_locking_read_refreshes_what_the_session_holds(db: DatabaseSessionFactory) -> None:
    """The lock protects the current row, so the entity shows it, not an older read."""
    (job,) = await _seed(1)

    @transactional(propagation="REQUIRES_NEW")
    async def bump() -> None:
        other = await jobs.get_by_id(job.id)
        assert other is not None
        other.balance = 5

    @transactional
    async def read_twice() -> tuple[int, int]:
        before = await jobs.get_by_id(job.id)
        assert before is not None
        seen = before.balance
        await bump()
        after = await jobs.get_by_id(job.id, lock="update")
        assert after is before  # the same identity, refreshed
        return seen, after.balance

    assert await read_twice() == (0, 5)


# -- refused where a lock cannot hold ----------------------------------------------------


async def test_a_lock_outside_a_transaction_is_refused(db: DatabaseSessionFactory) -> None:
    (job,) = await _seed(1)
    with pytest.raises(NoTransactionError, match="needs a transaction"):
        await jobs.get_by_id(job.id, lock="update")
    with pytest.raises(NoTransactionError, match="claim_batch"):
        await jobs.claim_batch(5)
    with pytest.raises(NoTransactionError):
        jobs.stream(lock="update")
    with pytest.raises(NoTransactionError):
        await jobs.find_by_status("pending", lock="update")


async def test_a_lock_in_read_only_work_is_refused(db: DatabaseSessionFactory) -> None:
    (job,) = await _seed(1)

    @transactional(read_only=True)
    async def report(call: Callable[[], Awaitable[object]]) -> None:
        await call()

    for call in (
        lambda: jobs.get_by_id(job.id, lock="share"),
        lambda: jobs.claim_batch(5),
        lambda: jobs.find_all_by_status("pending", lock="update"),
        lambda: _drain(jobs.stream(lock="update")),
    ):
        with pytest.raises(ReadOnlyTransactionError, match="read_only"):
            await report(call)


async def test_a_bad_lock_names_the_valid_ones(db: DatabaseSessionFactory) -> None:
    @transactional
    async def bad(lock: Any) -> None:
        await jobs.get_by_id(1, lock=lock)

    for value in ("UPDATE", "for update", 1):
        with pytest.raises(ValueError, match="'update', 'share', 'update_skip_locked'"):
            await bad(value)

    @transactional
    async def counted() -> None:
        await jobs.count_by_status("pending", lock="update")  # type: ignore[call-arg]

    with pytest.raises(TypeError, match="takes no load= or lock="):
        await counted()


async def test_a_failed_nowait_leaves_the_transaction_usable_for_rollback(
    db: DatabaseSessionFactory,
) -> None:
    """The error ends the contender's transaction cleanly; the holder commits its work."""
    (job,) = await _seed(1)

    async def hold() -> None:
        locked = await jobs.get_by_id(job.id, lock="update")
        assert locked is not None
        locked.balance = 7

    error, _ = await _hold_then_contend(hold, lambda: jobs.get_by_id(job.id, lock="update_nowait"))
    assert isinstance(error, LockTimeoutError)
    stored = await jobs.get_by_id(job.id)
    assert stored is not None and stored.balance == 7


def test_lock_errors_are_mapped_per_database() -> None:
    """55P03 and MySQL 3572 always; MariaDB's 1205 only for a NOWAIT read (else retryable)."""
    import pymysql

    from viveka_db import DeadlockError
    from viveka_db.dialects import adapter_for
    from viveka_db.dialects.base import NO_SITE, NOWAIT_SITE

    def mysql_error(errno: int) -> sa_exc.DBAPIError:
        orig = pymysql.err.OperationalError(errno, "Lock wait timeout exceeded")
        return sa_exc.OperationalError("UPDATE t SET a=%s", {}, orig)

    mysql = adapter_for("mariadb")
    assert isinstance(mysql.map_error(mysql_error(1205), NOWAIT_SITE), LockTimeoutError)
    waited = mysql.map_error(mysql_error(1205), NO_SITE)
    assert isinstance(waited, DeadlockError) and not isinstance(waited, LockTimeoutError)
    assert isinstance(mysql.map_error(mysql_error(3572), NO_SITE), LockTimeoutError)

    class LockNotAvailable(Exception):
        sqlstate = "55P03"

    pg_error = sa_exc.DBAPIError("SELECT 1", {}, LockNotAvailable("lock timeout"))
    mapped = adapter_for("postgresql").map_error(pg_error, NO_SITE)
    assert isinstance(mapped, LockTimeoutError) and isinstance(mapped, sa_exc.OperationalError)
    assert "55P03" in str(mapped)


def test_a_nowait_statement_is_recognised_by_its_text_too() -> None:
    """Mapped later (at the transaction boundary, without the statement's options)."""
    import pymysql

    from viveka_db.dialects import adapter_for
    from viveka_db.dialects.base import NO_SITE

    orig = pymysql.err.OperationalError(1205, "Lock wait timeout exceeded")
    error = sa_exc.OperationalError("SELECT t.id FROM t FOR UPDATE NOWAIT", {}, orig)
    assert isinstance(adapter_for("mariadb").map_error(error, NO_SITE), LockTimeoutError)
