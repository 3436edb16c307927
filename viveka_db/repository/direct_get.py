"""``get_by_id`` as a transaction's first read, without the session's round trips (see
:mod:`viveka_db.session.direct_read`).

* In a read-only transaction on the read engine (a replica, or the primary's autocommit
  engine) with no session yet, the read goes straight to the driver. The entities it
  returns are remembered for the rest of the transaction, so a second ``get_by_id`` of the
  same key returns the same instance without SQL, as the session's identity map would.
* In a read-write transaction whose session has not begun, on a database where a plain
  ``SELECT`` before the first write sees exactly what it would see inside the transaction
  (READ COMMITTED, or SQLite, whose transactions begin at their first write anyway: see
  :mod:`viveka_db.session.engine`), the read runs on a connection of the write engine's
  pool before any ``BEGIN``, and the entity joins the session as persistent, without SQL.
  A transaction that only read then commits without ``BEGIN`` or ``COMMIT``; one that
  writes begins at its first write.

Once the transaction has a session, every read goes through it.

Why, and where it applies: docs/contributing/decisions.md, "A transaction's first read by
key may skip the session".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from viveka_db.context.scope import TransactionScope
from viveka_db.dialects import adapter_for
from viveka_db.replicas.consistency import ON_REPLICA_KEY
from viveka_db.session.db_session import DatabaseSessionFactory
from viveka_db.session.direct_read import plan_for, read_by_key

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.engine import Dialect
    from sqlalchemy.ext.asyncio import AsyncEngine
    from sqlalchemy.orm import Mapper

    KeyValues = Callable[[Any, Dialect | None], list[Any] | None]

__all__ = ["direct_get", "reads_directly"]

_ENGINE = "viveka_direct_engine"
_LOADED = "viveka_direct_loaded"
_BEFORE_BEGIN = ("READ COMMITTED", "READ UNCOMMITTED")
"""Isolation levels at which a SELECT sees the same rows before BEGIN as after it."""


def reads_directly(scope: TransactionScope | None) -> bool:
    """Whether ``scope`` may read without its session: it has none yet, and it is either
    read-only on the read engine or a read-write transaction."""
    return (
        scope is not None and not scope.has_session and (scope.read_engine or not scope.read_only)
    )


def _reads_before_begin(factory: DatabaseSessionFactory) -> bool:
    """Whether a SELECT on the primary's autocommit engine is what the transaction would
    have read itself (the server's default level is known after the first connection)."""
    configured = factory.settings.database.isolation_level
    level = None if configured is None else configured.value
    dialect = factory.engine.sync_engine.dialect
    if adapter_for(dialect).single_writer:  # SQLite: its transaction begins at its first write
        return level != "SERIALIZABLE"
    # the server's default is known once the engine has connected (else: inside, to be safe)
    return (level or getattr(dialect, "default_isolation_level", None)) in _BEFORE_BEGIN


def _engine(scope: TransactionScope) -> AsyncEngine | None:
    engine: AsyncEngine | None = scope.extras.get(_ENGINE)
    if engine is not None:
        return engine
    factory = scope.factory
    if (
        not isinstance(factory, DatabaseSessionFactory)
        or factory.shared_connection is not None
        or factory.tenant_rls
    ):
        return None
    if factory.primary_read_engine is factory.engine:  # in-memory SQLite: one connection
        return None
    if scope.read_only:
        engine, on_replica = factory.pick_read_engine()
    elif _reads_before_begin(factory):  # the transaction's own pool, before its BEGIN
        engine, on_replica = factory.engine, False
    else:
        return None
    scope.extras[_ENGINE] = engine
    if on_replica:
        scope.extras[ON_REPLICA_KEY] = True  # the cache does not store what a replica read
    return engine


async def direct_get(
    scope: TransactionScope, mapper: Mapper[Any], ident: Any, key_values: KeyValues
) -> Any:
    """The entity with primary key ``ident`` or ``None``; ``NotImplemented`` where the
    session must read it instead. ``key_values(ident, dialect)``: the stored key values
    (the repository's ``primary_key_values``)."""
    engine = _engine(scope)
    if engine is None:
        return NotImplemented
    factory = scope.factory
    assert isinstance(factory, DatabaseSessionFactory)  # checked by _engine
    plan = plan_for(engine, mapper, for_engine=None if scope.read_only else factory.engine)
    if plan is None:
        return NotImplemented
    key = key_values(ident, engine.dialect)
    if key is None:
        return None
    loaded: dict[Any, Any] = scope.extras.setdefault(_LOADED, {})
    identity = (mapper, *key)
    instance = loaded.get(identity)
    if instance is not None:
        return instance
    instance = await read_by_key(engine, plan, key)
    if instance is None or instance is NotImplemented:
        return instance
    if scope.read_only:
        loaded[identity] = instance
    else:  # persistent in the transaction's session, as if the session had loaded it
        scope.session.sync_session.add(instance)
    return instance
