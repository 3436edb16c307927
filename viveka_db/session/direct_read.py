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

Why, and where it applies: docs/contributing/decisions.md, "A transaction's first read by
key may skip the session".
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import Column, and_, bindparam, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapper
from sqlalchemy.util import greenlet_spawn

from viveka_db.compat import detached_entity
from viveka_db.session.engine import VivekaSession
from viveka_db.telemetry.statements import driver_statement
from viveka_db.tenancy.filters import is_tenant_scoped, soft_deletes

__all__ = ["DirectRead", "plan_for", "read_by_key"]

Rows = tuple[Sequence[Sequence[Any]], list[Any] | None]
"""The rows, and the driver's type code of each column when asked to describe them."""
Fetch = Callable[[Any, str, tuple[Any, ...], bool], Awaitable[Rows]]
Processor = Callable[[Any], Any] | None

_OWN = "viveka_db."
_STATEMENT_EVENTS = (
    "before_execute",
    "after_execute",
    "before_cursor_execute",
    "after_cursor_execute",
    "handle_error",
)


async def _fetch_asyncpg(driver: Any, sql: str, params: tuple[Any, ...], describe: bool) -> Rows:
    if not describe:
        return await driver.fetch(sql, *params), None
    statement = await driver.prepare(sql)  # from asyncpg's statement cache, as fetch() does
    rows = await statement.fetch(*params)
    return rows, [attribute.type.oid for attribute in statement.get_attributes()]


async def _fetch_aiomysql(driver: Any, sql: str, params: tuple[Any, ...], describe: bool) -> Rows:
    async with driver.cursor() as cursor:
        await cursor.execute(sql, params)
        rows = await cursor.fetchall()
        return rows, [column[1] for column in cursor.description] if describe else None


async def _fetch_aiosqlite(driver: Any, sql: str, params: tuple[Any, ...], describe: bool) -> Rows:
    # one hop to aiosqlite's thread for the statement and its rows (a cursor takes three)
    return await driver.execute_fetchall(sql, params), None


async def _refuse(driver: Any, sql: str, params: tuple[Any, ...], describe: bool) -> Rows:
    raise NotImplementedError  # a plan found unusable: every read goes through the session


_FETCH: dict[str, Fetch] = {
    "asyncpg": _fetch_asyncpg,
    "aiomysql": _fetch_aiomysql,
    "aiosqlite": _fetch_aiosqlite,
}


class DirectRead:
    """The compiled read of one entity on one engine (built once, by :func:`plan_for`)."""

    __slots__ = (
        "binds",
        "dialect",
        "fetch",
        "keys",
        "mapper",
        "primary_key",
        "processors",
        "sql",
        "types",
    )

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
        self.types = tuple(col.type.dialect_impl(dialect) for col in columns)
        self.dialect = dialect
        self.processors: tuple[Processor, ...] | None = None
        """Set from the driver's column types at the first read (asyncpg's numeric
        processor depends on them, as it does on the ORM path)."""
        self.keys = tuple(prop.key for prop in props)
        self.primary_key = tuple(mapper.get_property_by_column(col).key for col in key_columns)
        self.mapper = mapper
        self.fetch = fetch

    def params(self, key: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(key[index] if bind is None else bind(key[index]) for index, bind in self.binds)

    def describe(self, coltypes: Sequence[Any] | None) -> None:
        """Take the result processors for the driver's column types ``coltypes``."""
        types = [None] * len(self.types) if coltypes is None else list(coltypes)
        self.processors = tuple(
            impl.result_processor(self.dialect, coltype)
            for impl, coltype in zip(self.types, types, strict=True)
        )

    def entity(self, row: Sequence[Any]) -> Any:
        """The detached instance the ORM would leave after loading ``row`` and closing."""
        assert self.processors is not None
        values = {
            key: value if process is None else process(value)
            for key, process, value in zip(self.keys, self.processors, row, strict=True)
        }
        return detached_entity(self.mapper, self.primary_key, values)


_Cached = tuple[DirectRead | None, tuple[int, ...]]
_Plans = dict[tuple[Mapper[Any], Engine | None], _Cached]
_plans: weakref.WeakKeyDictionary[Engine, _Plans] = weakref.WeakKeyDictionary()
_session_events: Any = None
"""The ORM events of one idle session: their collections follow the class's listeners."""
_attach_counts = (0, 0)
"""``before_attach``/``after_attach`` listeners: none, or an attached entity would be seen."""


def plan_for(
    engine: AsyncEngine, mapper: Mapper[Any], *, for_engine: AsyncEngine | None = None
) -> DirectRead | None:
    """The direct read of ``mapper``'s entities on ``engine``, or ``None`` where the ORM
    path must run. Decided on the first call and again whenever a listener was added to
    or removed from an event this path would skip (counted on every call).

    ``for_engine``: the read belongs to a transaction of that engine, whose session the
    entity then joins (``session.add``): its statement listeners must be viveka_db's too
    (they would have seen the read), and no attach listener may see the entity join.
    """
    sync_engine = engine.sync_engine
    owner = None if for_engine is None else for_engine.sync_engine
    plans = _plans.get(sync_engine)
    if plans is None:
        plans = _plans[sync_engine] = {}
    signature = _listener_counts(sync_engine, mapper)
    if owner is not None:
        if signature[:2] != _attach_counts:
            return None
        signature += _listener_counts(owner, mapper)[2:]
    cached = plans.get((mapper, owner))
    if cached is not None and cached[1] == signature:
        return cached[0]
    plan: DirectRead | None = None
    fetch = _FETCH.get(sync_engine.dialect.driver)
    eligible = _engine_eligible(sync_engine) and (owner is None or _engine_eligible(owner))
    if fetch is not None and eligible and _entity_eligible(mapper):
        try:
            plan = DirectRead(mapper, sync_engine.dialect, fetch)
        except Exception:  # a column type or statement this path does not know
            plan = None
    plans[(mapper, owner)] = (plan, signature)
    return plan


def _listener_counts(engine: Engine, mapper: Mapper[Any]) -> tuple[int, ...]:
    global _session_events
    if _session_events is None:
        _session_events = VivekaSession().dispatch
    session = _session_events
    engine_dispatch, dialect_dispatch = engine.dispatch, engine.dialect.dispatch
    return (
        len(session.before_attach),
        len(session.after_attach),
        len(session.do_orm_execute),
        len(session.loaded_as_persistent),
        len(mapper.class_manager.dispatch.load),
        *(len(getattr(engine_dispatch, name, ())) for name in _STATEMENT_EVENTS),
        *(len(getattr(dialect_dispatch, name, ())) for name in _STATEMENT_EVENTS),
    )


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
    session = VivekaSession().dispatch
    return _only_own(session.do_orm_execute) and not session.loaded_as_persistent


async def read_by_key(engine: AsyncEngine, plan: DirectRead, key: Sequence[Any]) -> Any:
    """The detached entity with primary key ``key`` (stored values), ``None`` if there is
    none, or ``NotImplemented`` when the statement failed (the caller reads through the
    session instead, which reports the failure as usual)."""
    sync_engine = engine.sync_engine
    params = plan.params(key)
    result = await greenlet_spawn(_run, sync_engine, plan, params)
    if result is NotImplemented:
        return NotImplemented
    rows, coltypes = result
    if plan.processors is None:
        try:
            plan.describe(coltypes)
        except Exception:  # a type whose processor this path cannot know: the ORM reads
            plan.fetch = _refuse
            return NotImplemented
    return plan.entity(rows[0]) if rows else None


def _run(engine: Engine, plan: DirectRead, params: tuple[Any, ...]) -> Any:
    """In SQLAlchemy's greenlet: check out, run, check in (the pool may need to await)."""

    def fetch(driver: Any) -> Awaitable[Rows]:
        return plan.fetch(driver, plan.sql, params, plan.processors is None)

    try:
        connection = engine.raw_connection()
    except sa_exc.TimeoutError:  # the pool is exhausted: waiting again would not help
        raise
    except Exception:  # the session connects again and reports the failure as usual
        return NotImplemented
    try:
        dbapi_connection: Any = connection.dbapi_connection
        with driver_statement(engine, plan.sql):
            return dbapi_connection.run_async(fetch)
    except Exception:
        connection.invalidate()
        return NotImplemented
    except BaseException as exc:  # cancelled: the statement may still run on the connection
        connection.invalidate(exc)
        raise
    finally:
        connection.close()
