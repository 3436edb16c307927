"""What a column's type allows, decided before any SQL: the values it can hold, ordering.

Identifiers and filter values often come straight from a URL. A value the column cannot
hold (``99999999999`` for a 32-bit ``INTEGER``, ``"abc"`` for an integer or UUID key) would
make the driver fail (PostgreSQL: integer out of range; SQLite: ``OverflowError`` beyond 64
bits) and surface as a 500. No row can have such a value, so an equality with it matches
nothing: :func:`equal_to` turns it into ``FALSE`` (the lookup is "not found") and
:func:`fits` tells callers that can skip the query altogether (``get_by_id``).

The accepted forms, per column type (documented in ``docs/contributing/decisions.md``):

* integer columns take an ``int`` within the column's range on the database in use
  (``SMALLINT`` 16 bits, ``INTEGER`` 32, ``BIGINT`` 64, MySQL's ``UNSIGNED`` and
  ``TINYINT``/``MEDIUMINT`` accordingly; every SQLite integer is 64 bits), or a string of
  decimal digits (``"42"``, a path parameter), converted; any other string matches nothing;
* UUID columns take a ``uuid.UUID`` or a string that parses as one; any other string
  matches nothing;
* everything else is passed on unchanged.
"""

from __future__ import annotations

import functools
import re
import typing
import uuid
from typing import Any

from sqlalchemy import ARRAY, JSON, LargeBinary, PickleType, false, true
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import (
    BigInteger,
    Integer,
    NullType,
    SmallInteger,
    TypeDecorator,
    TypeEngine,
    Uuid,
)

from viveka_db.dialects import adapter_for

__all__ = [
    "NO_MATCH",
    "base_type",
    "equal_to",
    "fits",
    "in_values",
    "is_orderable",
    "not_equal_to",
    "storable",
]

NO_MATCH: Any = object()
"""What :func:`storable` returns for a value the column cannot hold."""

_DECIMAL = re.compile(r"[+-]?[0-9]{1,40}")

_UNORDERABLE: tuple[type[TypeEngine[Any]], ...] = (
    JSON,
    ARRAY,
    LargeBinary,
    PickleType,
    NullType,
)
"""Types with no portable ordering (PostgreSQL has no ``<`` for ``json``; binary and pickled
values sort by bytes, which means nothing to a reader)."""


def base_type(type_: TypeEngine[Any], dialect: Dialect) -> TypeEngine[Any]:
    """The type a column's values reach the driver as (``TypeDecorator`` layers removed)."""
    while isinstance(type_, TypeDecorator):
        type_ = type_.load_dialect_impl(dialect)
    return type_


def _declared_type(type_: TypeEngine[Any]) -> TypeEngine[Any]:
    """``type_`` without ``TypeDecorator`` layers, on no particular database."""
    while isinstance(type_, TypeDecorator):
        type_ = type_.impl_instance
    return type_


def is_orderable(type_: TypeEngine[Any]) -> bool:
    """Whether ``ORDER BY`` a column of ``type_`` works and means something on every database."""
    return not isinstance(_declared_type(type_), _UNORDERABLE)


@functools.lru_cache(maxsize=1024)
def _domain(type_: TypeEngine[Any], dialect: Dialect | None) -> tuple[int, int] | bool | None:
    """What ``type_`` holds on ``dialect``: ``(low, high)`` for an integer, ``True`` for a
    UUID, ``None`` for anything else (worked out once per type and dialect)."""
    if isinstance(_declared_type(type_), Uuid):
        return True
    resolved = (
        _declared_type(type_)
        if dialect is None
        else base_type(type_.dialect_impl(dialect), dialect)
    )
    if not isinstance(resolved, Integer):
        return None
    bits = _integer_bits(resolved, dialect)
    if getattr(resolved, "unsigned", False):
        return 0, 2**bits - 1
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def _integer_bits(type_: Integer, dialect: Dialect | None) -> int:
    """How many bits an integer column holds on ``dialect``."""
    if dialect is None or adapter_for(dialect).all_integers_64_bit or isinstance(type_, BigInteger):
        return 64
    name = type(type_).__name__.upper()
    if name == "TINYINT":
        return 8
    if isinstance(type_, SmallInteger):
        return 16
    return 24 if name == "MEDIUMINT" else 32


def storable(column: Any, value: Any, dialect: Dialect | None) -> Any:
    """``value`` as ``column`` would store it (see the module docstring), or :data:`NO_MATCH`."""
    if not isinstance(value, int | str) or isinstance(value, bool):
        return value
    domain = _domain(column.type, dialect)
    if domain is None:
        return value
    if domain is True:
        if isinstance(value, int):
            return value
        try:
            return uuid.UUID(value)
        except ValueError:
            return NO_MATCH
    if isinstance(value, str):
        if _DECIMAL.fullmatch(value.strip()) is None:
            return NO_MATCH
        value = int(value)
    low, high = typing.cast("tuple[int, int]", domain)
    return value if low <= value <= high else NO_MATCH


def fits(column: Any, value: Any, dialect: Dialect | None) -> bool:
    """Whether ``column`` can hold ``value`` at all."""
    return storable(column, value, dialect) is not NO_MATCH


def equal_to(column: Any, value: Any, dialect: Dialect | None) -> ColumnElement[bool]:
    """``column == value``; ``FALSE`` when the column cannot hold ``value`` (no row matches)."""
    stored = storable(column, value, dialect)
    if stored is NO_MATCH:
        return false()
    result: ColumnElement[bool] = column == stored
    return result


def not_equal_to(column: Any, value: Any, dialect: Dialect | None) -> ColumnElement[bool]:
    """``column != value``; every non-``NULL`` row when the column cannot hold ``value``."""
    stored = storable(column, value, dialect)
    if stored is NO_MATCH:
        return column.is_not(None) if column is not None else true()
    result: ColumnElement[bool] = column != stored
    return result


def in_values(column: Any, values: Any, dialect: Dialect | None) -> list[Any]:
    """The items of ``values`` that ``column`` can hold, as it would store them."""
    kept = (storable(column, value, dialect) for value in values)
    return [value for value in kept if value is not NO_MATCH]
