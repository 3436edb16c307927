"""Every use of a third-party private internal, each behind a version check.

A private attribute can change in any minor release, so each use here is taken only on
the releases the test suite verifies (SQLAlchemy ``2.0`` and ``2.1``; asyncpg ``0.29`` to
``0.32``); on any other release the same answer comes from public API, slower but safe.
``tests/core/test_compat.py``, ``tests/repository/test_attach.py`` and
``tests/repository/test_pg_copy_codecs.py`` check that both paths give the same result and
leave the same state.
"""

from __future__ import annotations

import re
import sys
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from itertools import repeat
from operator import attrgetter, contains, is_
from typing import Any

import sqlalchemy
from sqlalchemy.orm import InstanceState, Mapper, Session, make_transient_to_detached
from sqlalchemy.orm.attributes import instance_state, set_committed_value
from sqlalchemy.sql import Select

__all__ = [
    "FAST_ATTACH",
    "PRIVATE_FAST_PATHS",
    "attach_states",
    "fast_attach_verified",
    "has_limit",
    "has_limit_private",
    "has_limit_public",
    "identity_keys",
    "new_entities",
    "new_entities_private",
    "new_entities_public",
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


# -- does a SELECT have a LIMIT or OFFSET (keyset streaming on MySQL/MariaDB)? --------------


def has_limit_private(statement: Select[Any]) -> bool:
    """``limit()`` or ``offset()`` was called: read from the statement's private fields."""
    limit: object = statement._limit_clause  # pyright: ignore[reportPrivateUsage]
    offset: object = statement._offset_clause  # pyright: ignore[reportPrivateUsage]
    return limit is not None or offset is not None


def has_limit_public(statement: Select[Any]) -> bool:
    """The same from public API: the generic compiler renders ``LIMIT``/``OFFSET`` (also a
    subquery's: the stream then reads the same rows in one buffered query)."""
    compiled = str(statement.compile())
    return " LIMIT " in compiled or " OFFSET " in compiled


has_limit: Callable[[Select[Any]], bool] = (
    has_limit_private if PRIVATE_FAST_PATHS else has_limit_public
)
"""Whether a SELECT is bounded by ``LIMIT``/``OFFSET`` (keyset chunks would replace them)."""


# -- entities of inserted rows, built and made persistent without a flush (insert_all) --------

_consume = deque[Any](maxlen=0).extend  # runs a ``map`` over all rows at C speed
_Row = dict[str, Any]
_set: Callable[[_Row, str, Any], None] = _Row.__setitem__
_update: Callable[[_Row, Any], None] = _Row.update
_dict_of = attrgetter("__dict__")
_STATE_FIELDS = ("session_id", "_instance_dict", "modified", "expired", "_strong_obj", "key")


def fast_attach_verified(version: str = sqlalchemy.__version__) -> bool:
    """Whether :func:`attach_states` and :func:`new_entities_private` fit this SQLAlchemy:
    2.0.43+ and 2.1 (the flush's bookkeeping is the same in both), with every name they
    touch there (a patch release that renames one falls back too)."""
    match = re.match(r"(\d+)\.(\d+)\.(\d+)", version)
    release = tuple(map(int, match.groups())) if match else (0, 0, 0)
    if not ((2, 0, 43) <= release < (2, 2, 0)):
        return False
    imap: Any = Session().identity_map
    return (
        isinstance(getattr(imap, "_dict", None), dict)
        and isinstance(getattr(imap, "_modified", None), set)
        and isinstance(getattr(imap, "_wr", None), weakref.ref)
        and callable(getattr(imap, "_add_unpresent", None))
        and all(hasattr(InstanceState, name) for name in _STATE_FIELDS)
    )


FAST_ATTACH: bool = fast_attach_verified()
"""Whether the bulk paths may write the flush's private bookkeeping directly."""


def identity_keys(mapper: Mapper[Any], key_columns: list[list[Any]]) -> list[Any]:
    """The identity-map keys of rows whose primary key values are ``key_columns`` (one list
    per key column), as ``Mapper.identity_key_from_primary_key`` gives them."""
    identity_class: Any = getattr(mapper, "_identity_class", None) if FAST_ATTACH else None
    idents = zip(*key_columns, strict=True)
    if identity_class is None:
        return list(map(mapper.identity_key_from_primary_key, idents))
    return list(zip(repeat(identity_class), idents, repeat(None)))


def attach_states(
    session: Session, states: list[InstanceState[Any]], keys: list[Any], *, new_keys: bool
) -> None:
    """Make the states of freshly inserted transient entities persistent, as a flush does.

    The steps of ``Session._register_persistent`` and ``InstanceState._commit_all_states``,
    each over all states at C speed; the per-object checks a flush makes are made once for
    the batch (all were transient; no key is in the map yet, which ``new_keys=True`` says
    the caller checked). Only where :data:`FAST_ATTACH`; rollback tracking is the caller's.
    """
    identity_map: Any = session.identity_map
    by_key: dict[Any, InstanceState[Any]] = identity_map._dict
    if by_key and not new_keys and not by_key.keys().isdisjoint(keys):
        _attach_one_by_one(session.hash_key, identity_map, states, keys)
        return
    state_dicts: list[_Row] = list(map(_dict_of, states))
    common = {"session_id": session.hash_key, "_instance_dict": identity_map._wr}
    common.update(modified=False, expired=False, _strong_obj=None)
    _consume(map(_update, state_dicts, repeat(common)))
    _consume(map(_set, state_dicts, repeat("key"), keys))
    by_key.update(zip(keys, states, strict=True))
    # what InstanceState._commit_all_states does: current values become the loaded state
    _consume(map(_Row.clear, map(attrgetter("committed_state"), states)))
    if any(map(contains, state_dicts, repeat("_pending_mutations"))):
        for state_dict in state_dicts:
            state_dict.pop("_pending_mutations", None)
    if any(map(attrgetter("expired_attributes"), states)):
        for state in states:
            state.expired_attributes.difference_update(state.dict)
    modified: set[InstanceState[Any]] = identity_map._modified
    if modified:
        modified.difference_update(states)


def _attach_one_by_one(
    hash_key: int, identity_map: Any, states: list[InstanceState[Any]], keys: list[Any]
) -> None:
    """:func:`attach_states` when some keys are in the identity map already."""
    add_unpresent = identity_map._add_unpresent
    modified = identity_map._modified
    for state, key in zip(states, keys, strict=True):
        state.key = key
        state.session_id = hash_key
        if key in identity_map:
            identity_map.replace(state)
        else:
            add_unpresent(state, key)
        state.committed_state.clear()
        state.__dict__.pop("_pending_mutations", None)
        if state.expired_attributes:
            state.expired_attributes.difference_update(state.dict)
        if state.modified:
            modified.discard(state)
        state.modified = state.expired = False
        state._strong_obj = None  # pyright: ignore[reportPrivateUsage]


def new_entities_private(
    mapper: Mapper[Any], keys: list[str], columns: list[list[Any]]
) -> list[Any] | None:
    """Entities holding the rows of ``columns`` (one list per attribute of ``keys``), built
    as a query result builds them (no ``__init__``), each step over all rows at C speed:
    objects, their states, and each object's ``__dict__`` assigned whole. ``None`` where the
    class builds its objects itself (a ``__new__`` of its own) or SQLAlchemy would not."""
    cls: Any = mapper.class_
    manager: Any = mapper.class_manager
    if (
        cls.__new__ is not object.__new__
        or getattr(manager, "STATE_ATTR", None) != "_sa_instance_state"
        or manager._state_constructor is not InstanceState
    ):
        return None
    count = len(columns[0]) if columns else 0
    instances: list[Any] = list(map(cls.__new__, repeat(cls, count)))
    states: list[Any] = list(map(InstanceState, instances, repeat(manager)))
    dicts = _with_columns([{} for _ in range(count)], keys, columns)
    _consume(map(_set, dicts, repeat("_sa_instance_state"), states))
    _consume(map(setattr, instances, repeat("__dict__"), dicts))
    return instances


def new_entities_public(
    mapper: Mapper[Any], keys: list[str], columns: list[list[Any]]
) -> list[Any]:
    """The same through ``ClassManager.new_instance``, writing into each ``__dict__``."""
    new_instance = mapper.class_manager.new_instance
    instances = [new_instance() for _ in range(len(columns[0]) if columns else 0)]
    _with_columns(list(map(_dict_of, instances)), keys, columns)
    return instances


def _with_columns(dicts: list[_Row], keys: list[str], columns: list[list[Any]]) -> list[_Row]:
    """``dicts`` given the values of ``columns``, a column at a time (a column whose rows all
    hold the same object, a shared timestamp, in one ``dict.update`` with the others)."""
    same: _Row = {}
    for key, column in zip(keys, columns, strict=True):
        first = column[0] if column else None
        if column and column[-1] is first and all(map(is_, column, repeat(first))):
            same[key] = first
        else:
            _consume(map(_set, dicts, repeat(key), column))
    if same:
        _consume(map(_update, dicts, repeat(same)))
    return dicts


def new_entities(mapper: Mapper[Any], keys: list[str], columns: list[list[Any]]) -> list[Any]:
    """Transient entities of ``mapper``'s class holding the rows of ``columns`` as their
    values (one list per attribute named in ``keys``), without calling ``__init__``."""
    built = new_entities_private(mapper, keys, columns) if FAST_ATTACH else None
    return new_entities_public(mapper, keys, columns) if built is None else built


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
