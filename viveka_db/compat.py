"""Every use of a third-party private internal, each behind a version check.

A private attribute can change in any minor release, so each use here is taken only on
the releases the test suite verifies (SQLAlchemy ``2.0`` and ``2.1``; asyncpg ``0.29`` to
``0.32``); on any other release the same answer comes from public API, slower but safe.
``tests/core/test_compat.py`` and ``tests/repository/test_pg_copy_codecs.py`` check that
both paths give the same result and leave the same state.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import sqlalchemy
from sqlalchemy.orm import Mapper, make_transient_to_detached
from sqlalchemy.orm.attributes import instance_state, set_committed_value
from sqlalchemy.sql import Select

__all__ = [
    "PRIVATE_FAST_PATHS",
    "asyncpg_copy_codecs_verified",
    "copy_with_codecs",
    "detached_entity",
    "detached_entity_public",
    "detached_entity_private",
    "order_by_clauses",
    "order_by_clauses_private",
    "order_by_clauses_public",
    "requests_row_lock",
    "requests_row_lock_public",
    "requests_row_lock_private",
    "sleep_in_greenlet",
]


def _minor(version: str) -> tuple[int, int]:
    major, minor = [*version.split("."), "0"][:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


PRIVATE_FAST_PATHS = (2, 0) <= _minor(sqlalchemy.__version__) < (2, 2) and hasattr(
    Select, "_for_update_arg"
)
"""Whether this SQLAlchemy release is one whose private internals the suite verifies."""


# -- does a statement ask for a row lock (SELECT ... FOR UPDATE)? ------------------------


def requests_row_lock_private(statement: Any) -> bool:
    """``with_for_update()`` was called: read from the statement's private field."""
    return getattr(statement, "_for_update_arg", None) is not None


def requests_row_lock_public(statement: Any) -> bool:
    """The same answer from public API: the generic compiler renders ``FOR UPDATE``.

    (The SQLite compiler renders nothing for it, which is why the question is asked.)
    """
    compiled = str(statement.compile())
    return " FOR UPDATE" in compiled or " FOR SHARE" in compiled or " FOR KEY SHARE" in compiled


requests_row_lock: Callable[[Any], bool] = (
    requests_row_lock_private if PRIVATE_FAST_PATHS else requests_row_lock_public
)
"""Whether a compiled SELECT asked for a row lock (used by the SQLite transaction start)."""


# -- a detached entity holding loaded column values (cache hits) ---------------------------


def detached_entity_private(
    mapper: Mapper[Any], primary_key: tuple[str, ...], values: Mapping[str, Any]
) -> Any:
    """A fresh instance with ``values`` as loaded state and the identity key set directly.

    A quarter of the cost of :func:`detached_entity_public`, which a cache hit pays on
    every entity it returns.
    """
    instance = mapper.class_manager.new_instance()
    instance.__dict__.update(values)  # the state's dict (``state.dict``), without the lookup
    identity = tuple(map(values.__getitem__, primary_key))
    instance_state(instance).key = mapper.identity_key_from_primary_key(identity)
    return instance


def detached_entity_public(
    mapper: Mapper[Any], primary_key: tuple[str, ...], values: Mapping[str, Any]
) -> Any:
    """The same instance through public API: committed values, ``make_transient_to_detached``."""
    instance = mapper.class_manager.new_instance()
    for key, value in values.items():
        set_committed_value(instance, key, value)
    make_transient_to_detached(instance)
    return instance


detached_entity: Callable[[Mapper[Any], tuple[str, ...], Mapping[str, Any]], Any] = (
    detached_entity_private if PRIVATE_FAST_PATHS else detached_entity_public
)
"""A detached instance of ``mapper``'s class holding ``values``, as if loaded then detached.

``primary_key`` names the attributes of the mapper's primary key columns, in order.
"""


# -- the ORDER BY of a SELECT (keyset streaming on MySQL/MariaDB) ----------------------------


def order_by_clauses_private(statement: Select[Any]) -> tuple[Any, ...]:
    """The statement's ORDER BY expressions, read from its private field."""
    return tuple(statement._order_by_clauses)  # pyright: ignore[reportPrivateUsage]


def order_by_clauses_public(statement: Select[Any]) -> tuple[Any, ...]:
    """No public accessor exists: an ordered statement cannot be taken apart safely.

    Unordered statements need nothing; an ordered one raises instead of being streamed in
    the wrong order.
    """
    if " ORDER BY " in str(statement.compile()):
        raise NotImplementedError(
            f"streaming an ordered query on MySQL/MariaDB reads its ORDER BY, which this "
            f"SQLAlchemy release ({sqlalchemy.__version__}) does not expose; use SQLAlchemy "
            "2.0 or 2.1, or stream the query unordered"
        )
    return ()


order_by_clauses: Callable[[Select[Any]], tuple[Any, ...]] = (
    order_by_clauses_private if PRIVATE_FAST_PATHS else order_by_clauses_public
)
"""The ORDER BY expressions of a SELECT (keyset streaming needs them as its sort keys)."""


# -- asyncpg: binary COPY encoded with the codecs of a statement of our choosing ------------

ASYNCPG_VERIFIED = ((0, 29), (0, 33))
"""asyncpg releases (from, up to but excluding) whose COPY internals the suite verifies."""


def asyncpg_copy_codecs_verified(driver: Any) -> bool:
    """Whether :func:`copy_with_codecs` may run on ``driver`` (an asyncpg connection): its
    release is one the suite verifies and the internals it calls are all there."""
    asyncpg: Any = sys.modules.get("asyncpg")  # imported already: the driver is asyncpg's
    if asyncpg is None:
        return False
    low, high = ASYNCPG_VERIFIED
    prepared: Any = getattr(asyncpg, "prepared_stmt", None)
    statement_class: Any = getattr(prepared, "PreparedStatement", None)
    return (
        low <= _minor(str(getattr(asyncpg, "__version__", "0"))) < high
        and "_state" in getattr(statement_class, "__slots__", ())
        and callable(getattr(getattr(driver, "_protocol", None), "copy_in", None))
    )


async def copy_with_codecs(
    driver: Any, *, copy_sql: str, codecs: Any, records: Iterable[tuple[Any, ...]]
) -> None:
    """Binary ``COPY`` of ``records`` (``copy_sql``: ``COPY ... FROM STDIN (FORMAT
    binary)``), each value encoded by the codec of the same position of the result columns
    of ``codecs`` (a statement prepared on ``driver``).

    ``Connection.copy_records_to_table`` makes this same call with a ``SELECT`` of the
    table's own columns; there is no public way to pass another. Only where
    :func:`asyncpg_copy_codecs_verified` says so.
    """
    protocol: Any = driver._protocol  # pyright: ignore[reportPrivateUsage]
    state: Any = codecs._state  # pyright: ignore[reportPrivateUsage]
    await protocol.copy_in(copy_sql, None, None, records, state, None)


# -- pausing inside a sync event handler of an async engine ---------------------------------


def sleep_in_greenlet(seconds: float) -> None:
    """Pause ``seconds`` inside SQLAlchemy's greenlet without blocking the event loop.

    A ``do_connect`` handler is synchronous code that an async engine runs in a greenlet;
    ``sqlalchemy.util.await_only`` (2.0; an alias of ``await_`` in 2.1) is how SQLAlchemy's own
    async adapters await there. Outside the verified releases, or outside a greenlet, the
    pause is a plain ``time.sleep``: correct, but it holds the event loop for that long.
    """
    import asyncio
    import time

    from sqlalchemy import util
    from sqlalchemy.exc import MissingGreenlet

    await_only: Callable[[Any], Any] | None = (
        getattr(util, "await_only", None) if PRIVATE_FAST_PATHS else None
    )
    if await_only is not None:
        pause = asyncio.sleep(seconds)
        try:
            await_only(pause)
            return
        except MissingGreenlet:  # not inside a greenlet that SQLAlchemy spawned
            pause.close()
    time.sleep(seconds)
