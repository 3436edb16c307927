"""``advisory_lock``: a named lock shared by every process using one database.

::

    async with advisory_lock("nightly-report", timeout=5) as lock:
        await storage.write(report, fencing_token=lock.token)

The lock is held for the ``async with`` block on the primary of ``data_source``
(``"default"``), independently of any transaction of the caller: it lives on a
connection of its own (PostgreSQL, MySQL/MariaDB) or in a lock file beside the database
(SQLite); see :mod:`viveka_db.locks.postgresql`, :mod:`~viveka_db.locks.mysql` and
:mod:`~viveka_db.locks.sqlite`. ``timeout`` (seconds, ``None``: wait for ever) bounds the
wait; past it :class:`~viveka_db.LockTimeoutError` is raised. Locks are not re-entrant: a
task that asks again for a name it holds waits for itself.

``lock.token`` is a fencing token: every acquisition of a name gets a larger one than all
earlier acquisitions, in any process, also when an earlier holder crashed. A holder can
lose its lock without noticing (its connection dropped, it was paused past an
``idle_in_transaction_session_timeout``); a resource that remembers the largest token it
has seen and refuses smaller ones is safe even then. Why it is built this way:
``docs/contributing/decisions.md``, "Row locks, work queues and advisory locks".
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from viveka_db.context.scope import run_uncancellable
from viveka_db.dialects import adapter_for
from viveka_db.locks.base import Holder
from viveka_db.locks.mysql import MysqlLock
from viveka_db.locks.postgresql import PostgresqlLock
from viveka_db.locks.sqlite import SqliteLock
from viveka_db.session.db_session import DatabaseSessionFactory

__all__ = ["AdvisoryLock", "advisory_lock"]

_MAX_NAME = 1024


@dataclass(frozen=True, slots=True)
class AdvisoryLock:
    """A held advisory lock: its ``name``, its fencing ``token`` and its ``data_source``."""

    name: str
    token: int
    data_source: str


def _check(name: object, timeout: object) -> None:
    if not isinstance(name, str) or not name or len(name) > _MAX_NAME:
        raise ValueError(
            f"advisory_lock name must be a non-empty str of at most {_MAX_NAME} characters, "
            f"got {name!r:.80}"
        )
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, numbers.Real) or timeout < 0
    ):
        raise ValueError(f"advisory_lock timeout must be None or seconds >= 0, got {timeout!r}")


def _holder(factory: DatabaseSessionFactory, name: str) -> Holder:
    engine = factory.engine
    family = adapter_for(engine.dialect).name
    if family == "postgresql":
        return PostgresqlLock(engine, name)
    if family == "mysql":
        return MysqlLock(engine, name)
    if family == "sqlite":
        return SqliteLock(engine.url.database, name)
    raise NotImplementedError(
        f"advisory_lock supports PostgreSQL, MySQL/MariaDB and SQLite, not {engine.dialect.name}"
    )


@contextlib.asynccontextmanager
async def advisory_lock(
    name: str,
    *,
    timeout: float | None = None,  # noqa: ASYNC109 - the database bounds the wait, not a task
    data_source: str = "default",
) -> AsyncGenerator[AdvisoryLock]:
    """Hold the lock ``name`` for the ``async with`` block (see the module docs).

    :param name: any non-empty string; the same name is the same lock in every process.
    :param timeout: seconds to wait at most (``None``: no limit; ``0``: only if free now);
        past it :class:`~viveka_db.LockTimeoutError` is raised.
    :param data_source: the data source whose primary database holds the lock.
    """
    _check(name, timeout)
    holder = _holder(DatabaseSessionFactory.get_instance(data_source), name)
    token = await holder.acquire(None if timeout is None else float(timeout))
    try:
        yield AdvisoryLock(name, token, data_source)
    finally:
        await run_uncancellable(holder.release())
