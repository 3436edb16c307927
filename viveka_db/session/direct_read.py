"""Read-only reads by primary key straight on the driver: one round trip, no session.

A ``get_by_id`` in a read-only transaction on the read engine (autocommit: no ``BEGIN``, no
``COMMIT``, no reset when the connection returns to the pool) spends most of its time in
the ORM session that the read builds, not in the database. Where the ORM would do nothing
but run one ``SELECT`` of the entity's own columns and fill in an instance, this module
does exactly that: it takes a pooled connection of the same engine, runs the SQL that
SQLAlchemy compiled once for that entity and engine, applies the column types' result
processors and returns the same detached instance the session would have left behind.

Only where nothing would differ (:func:`plan_for` decides once per engine and entity):

* the entity is one table's plain columns: no inheritance, no relationships (a relationship
  loaded later needs the session), no deferred or expression columns, no tenant or
  soft-delete filtering, no ``load`` instance events;
* every ``do_orm_execute`` listener of the session class, and every statement event of the
  engine, is one of viveka_db's own: for a SELECT of such an entity they do nothing but
  trace and time it, which this path does too (:func:`driver_statement`);
* the driver is asyncpg, aiomysql or aiosqlite (aiosqlite's ``execute_fetchall`` runs the
  statement and fetches its rows in one hop to its thread), without ``echo`` or a schema
  translation map.

A failed statement releases (invalidates) its connection and the read runs again through
the session, so errors, their mapping and their telemetry are those of the ORM path. A
cancelled one invalidates its connection, as SQLAlchemy does, which also interrupts a
running SQLite statement (see :mod:`~viveka_db.session.abandoned`).
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import Column, and_, bindparam, select
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapper
from sqlalchemy.util import greenlet_spawn

from viveka_db.compat import detached_entity
from viveka_db.telemetry.statements import driver_statement

__all__ = ["DirectRead", "plan_for", "read_by_key"]

Fetch = Callable[[Any, str, tuple[Any, ...]], Awaitable[Sequence[Sequence[Any]]]]
Processor = Callable[[Any], Any] | None

_OWN = "viveka_db."
_STATEMENT_EVENTS = (
    "before_execute",
    "after_execute",
    "before_cursor_execute",
    "after_cursor_execute",
    "handle_error",
)


async def _fetch_asyncpg(driver: Any, sql: str, params: tuple[Any, ...]) -> Sequence[Any]:
    return await driver.fetch(sql, *params)  # type: ignore[no-any-return]


async def _fetch_aiomysql(driver: Any, sql: str, params: tuple[Any, ...]) -> Sequence[Any]:
    async with driver.cursor() as cursor:
        await cursor.execute(sql, params)
        return await cursor.fetchall()  # type: ignore[no-any-return]


async def _fetch_aiosqlite(driver: Any, sql: str, params: tuple[Any, ...]) -> Sequence[Any]:
    return await driver.execute_fetchall(sql, params)  # type: ignore[no-any-return]


_FETCH: dict[str, Fetch] = {
    "asyncpg": _fetch_asyncpg,
    "aiomysql": _fetch_aiomysql,
    "aiosqlite": _fetch_aiosqlite,
}


class DirectRead:
    """The compiled read of one entity on one engine (built once, by :func:`plan_for`)."""

    __slots__ = ("binds", "fetch", "keys", "mapper", "primary_key", "processors", "sql")

    def __init__(self, mapper: Mapper[Any], dialect: Dialect, fetch: Fetch) -> None:
        props = list(mapper.column_attrs)
        columns: list[Column[Any]] = [prop.columns[0] for prop in props]  # type: ignore[misc]
        key_columns = list(mapper.primary_key)
        criteria = [col == bindparam(f"pk_{n}") for n, col in enumerate(key_columns)]
        compiled = select(*columns).where(and_(*criteria)).compile(dialect=dialect)
        self.sql = compiled.string
        order = list(compiled.positiontup or ())
        if sorted(order) != sorted(f"pk_{n}" for n in range(len(key_columns))):
            raise ValueError("unexpected parameters")  # the caller treats it as not eligible
        by_name = {f"pk_{n}": col for n, col in enumerate(key_columns)}
        self.binds: tuple[tuple[int, Processor], ...] = tuple(
            (
                key_columns.index(by_name[name]),
                by_name[name].type.dialect_impl(dialect).bind_processor(dialect),
            )
            for name in order
        )
        self.processors: tuple[Processor, ...] = tuple(
            col.type.dialect_impl(dialect).result_processor(dialect, None) for col in columns
        )
        self.keys = tuple(prop.key for prop in props)
        self.primary_key = tuple(mapper.get_property_by_column(col).key for col in key_columns)
        self.mapper = mapper
        self.fetch = fetch

    def params(self, key: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(
            key[index] if bind is None else bind(key[index]) for index, bind in self.binds
        )

    def entity(self, row: Sequence[Any]) -> Any:
        """The detached instance the ORM would leave after loading ``row`` and closing."""
        values = {
            key: value if process is None else process(value)
            for key, process, value in zip(self.keys, self.processors, row, strict=True)
        }
        return detached_entity(self.mapper, self.primary_key, values)


_plans: weakref.WeakKeyDictionary[Engine, dict[Mapper[Any], DirectRead | None]] = (
    weakref.WeakKeyDictionary()
)


def plan_for(engine: AsyncEngine, mapper: Mapper[Any]) -> DirectRead | None:
    """The direct read of ``mapper``'s entities on ``engine``, or ``None`` where the ORM
    path must run (decided on the first call, then remembered)."""
    sync_engine = engine.sync_engine
    plans = _plans.get(sync_engine)
    if plans is None:
        plans = _plans[sync_engine] = {}
    try:
        return plans[mapper]
    except KeyError:
        pass
    plan: DirectRead | None = None
    fetch = _FETCH.get(sync_engine.dialect.driver)
    if fetch is not None and _engine_eligible(sync_engine) and _entity_eligible(mapper):
        try:
            plan = DirectRead(mapper, sync_engine.dialect, fetch)
        except Exception:  # a column type or statement this path does not know
            plan = None
    plans[mapper] = plan
    return plan


def _only_own(listeners: Any) -> bool:
    """Whether every listener is viveka_db's (SQLAlchemy wraps some in a closure)."""
    for listener in listeners:
        functions = [listener, *(cell.cell_contents for cell in listener.__closure__ or ())]
        if not any(str(getattr(fn, "__module__", "")).startswith(_OWN) for fn in functions):
            return False
    return True


def _engine_eligible(engine: Engine) -> bool:
    if engine.echo or engine.get_execution_options().get("schema_translate_map"):
        return False
    dispatchers = (engine.dispatch, engine.dialect.dispatch)
    return all(
        _only_own(getattr(dispatch, name, ()))
        for dispatch in dispatchers
        for name in _STATEMENT_EVENTS
    )


def _entity_eligible(mapper: Mapper[Any]) -> bool:
    from viveka_db.session.engine import VivekaSession
    from viveka_db.tenancy.filters import is_tenant_scoped, soft_deletes

    cls = mapper.class_
    if mapper.inherits is not None or mapper.polymorphic_on is not None or mapper.relationships:
        return False
    if is_tenant_scoped(cls) or soft_deletes(cls) or mapper.class_manager.dispatch.load:
        return False
    table = mapper.local_table
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        if len(prop.columns) != 1 or prop.deferred or not isinstance(column, Column):
            return False
        if column.table is not table:
            return False
    session = VivekaSession()
    return _only_own(session.dispatch.do_orm_execute) and not session.dispatch.loaded_as_persistent


async def read_by_key(engine: AsyncEngine, plan: DirectRead, key: Sequence[Any]) -> Any:
    """The detached entity with primary key ``key`` (stored values), ``None`` if there is
    none, or ``NotImplemented`` when the statement failed (the caller reads through the
    session instead, which reports the failure as usual)."""
    sync_engine = engine.sync_engine
    params = plan.params(key)
    rows = await greenlet_spawn(_run, sync_engine, plan, params)
    if rows is NotImplemented:
        return NotImplemented
    return plan.entity(rows[0]) if rows else None


def _run(engine: Engine, plan: DirectRead, params: tuple[Any, ...]) -> Any:
    """In SQLAlchemy's greenlet: check out, run, check in (the pool may need to await)."""
    connection = engine.raw_connection()
    try:
        dbapi_connection: Any = connection.dbapi_connection
        with driver_statement(engine, plan.sql):
            return dbapi_connection.run_async(
                lambda driver: plan.fetch(driver, plan.sql, params)
            )
    except Exception:
        connection.invalidate()
        return NotImplemented
    except BaseException as exc:  # cancelled: the statement may still run on the connection
        connection.invalidate(exc)
        raise
    finally:
        connection.close()
