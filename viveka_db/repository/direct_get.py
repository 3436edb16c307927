"""``get_by_id`` in a read-only transaction without a session (see
:mod:`viveka_db.session.direct_read`).

The transaction's first read by primary key, when the transaction runs on the read engine
(a replica, or the primary's autocommit engine) and no session exists yet, goes straight to
the driver. The entities it returns are remembered for the rest of the transaction, so a
second ``get_by_id`` of the same key returns the same instance without SQL, as the
session's identity map would. Once the transaction has a session (any other read), every
read goes through it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from viveka_db.context.scope import TransactionScope
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


def reads_directly(scope: TransactionScope | None) -> bool:
    """Whether ``scope`` may read without a session: read-only, on the read engine, no
    session yet."""
    return scope is not None and scope.read_engine and scope.read_only and not scope.has_session


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
    engine, on_replica = factory.pick_read_engine()
    if engine is factory.engine:  # in-memory SQLite: reads share the write engine
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
    plan = plan_for(engine, mapper)
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
    if instance is not None and instance is not NotImplemented:
        loaded[identity] = instance
    return instance
