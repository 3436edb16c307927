"""Every use of a third-party private internal, each behind a version check.

A private attribute can change in any minor release, so each use here is taken only on
the SQLAlchemy releases the test suite verifies (``2.0`` and ``2.1``); on any other
release the same answer comes from public API, slower but safe. ``tests/core/test_compat.py``
checks that both paths give the same result and leave the same ORM state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy
from sqlalchemy.orm import Mapper, make_transient_to_detached
from sqlalchemy.orm.attributes import instance_state, set_committed_value
from sqlalchemy.sql import Select

__all__ = [
    "PRIVATE_FAST_PATHS",
    "detached_entity",
    "detached_entity_public",
    "detached_entity_private",
    "order_by_clauses",
    "order_by_clauses_private",
    "order_by_clauses_public",
    "requests_row_lock",
    "requests_row_lock_public",
    "requests_row_lock_private",
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
    state = instance_state(instance)
    state.dict.update(values)
    state.key = mapper.identity_key_from_primary_key(tuple(values[key] for key in primary_key))
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
