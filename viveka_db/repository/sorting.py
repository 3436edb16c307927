"""Turning a ``sort=`` argument into ORDER BY clauses that are total and portable.

``sort`` is a mapped attribute (``User.name``), an ``.asc()``/``.desc()`` of one, a field
name (``"-name"`` for descending), a many-to-one path (``"author.name"``, see
:mod:`~viveka_db.repository.sort_paths`), or a list of those. Only columns whose type can
be ordered are accepted (not JSON, ARRAY, binary or pickled values), and a repository's
``sortable`` narrows them further: a column such as ``password_hash`` stays out of reach of
a ``?sort=`` from a client and out of its error messages, and a path is then accepted only
if ``sortable`` lists it. The primary key is appended so the order is total (rows with equal
sort values never swap between pages), and ``NULL`` s sort last ascending and first
descending on every database (PostgreSQL's rule; MySQL and SQLite would put them first),
which keyset pagination depends on.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, false, or_
from sqlalchemy.orm import InstrumentedAttribute, Mapper
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import ColumnElement, UnaryExpression
from sqlalchemy.types import NullType

from viveka_db.errors import EntityDefinitionError, PaginationError, UnknownFieldError
from viveka_db.repository.column_types import is_orderable
from viveka_db.repository.sort_paths import path_column

__all__ = [
    "SortKey",
    "keyset_after",
    "order_clauses",
    "orderable_keys",
    "resolve_sort",
    "sort_joins",
    "sortable_keys",
]


@dataclass(frozen=True, slots=True)
class SortKey:
    """One sort column: its attribute key, direction and whether it can hold ``NULL``.

    A key through a relationship (``"author.name"``) has ``joins``: the outer joins its
    (aliased) column needs.
    """

    key: str
    column: ColumnElement[Any]
    descending: bool
    nullable: bool
    joins: tuple[Any, ...] = field(default=())


def orderable_keys(mapper: Mapper[Any]) -> list[str]:
    """The attributes of ``mapper`` a ``sort=`` may name: columns whose type can be ordered
    (not JSON, ARRAY, binary or pickled values)."""
    return [
        prop.key
        for prop in mapper.column_attrs
        if all(is_orderable(getattr(col, "type", None) or NullType()) for col in prop.columns)
    ]


def sortable_keys(model: type[Any], mapper: Mapper[Any], sortable: object = None) -> list[str]:
    """The attributes ``sort=`` accepts: the orderable ones, narrowed to ``sortable`` (names
    or attributes) when given. Raises :class:`EntityDefinitionError` for a ``sortable``
    entry that is not an orderable attribute of ``model``."""
    orderable = orderable_keys(mapper)
    if sortable is None:
        return orderable
    if isinstance(sortable, str) or not isinstance(sortable, Sequence):
        raise EntityDefinitionError(
            f"sortable must be a tuple of {model.__name__}'s attribute names, got {sortable!r}"
        )
    keys: list[str] = []
    for entry in typing.cast("Sequence[object]", sortable):
        key = entry if isinstance(entry, str) else getattr(entry, "key", None)
        if isinstance(key, str) and "." in key:
            try:
                _orderable_path(model, key)
            except (PaginationError, UnknownFieldError) as exc:
                raise EntityDefinitionError(f"sortable names {key!r}: {exc}") from None
            keys.append(key)
            continue
        if key not in orderable:
            raise EntityDefinitionError(
                f"sortable names {entry!r}, which is not an orderable attribute of "
                f"{model.__name__}; choose among: {', '.join(sorted(orderable))}"
            )
        keys.append(key)
    return keys


def resolve_sort(
    model: type[Any], mapper: Mapper[Any], sort: object, sortable: object = None
) -> list[SortKey]:
    """The sort keys ``sort`` names, primary key appended.

    Only orderable attributes, and with ``sortable`` only those, are accepted; anything
    else is refused before any SQL, with a message that lists the accepted names and
    never echoes the refused one (it may be a column the caller must not learn about).
    """
    items: Sequence[object]
    if sort is None:
        items = ()
    elif isinstance(sort, list | tuple):
        items = typing.cast("Sequence[object]", sort)
    else:
        items = (sort,)
    allowed = sortable_keys(model, mapper, sortable)
    keys: list[SortKey] = []
    for item in items:
        key, descending = _key_and_direction(model, mapper, item, allowed, sortable is None)
        if any(existing.key == key for existing in keys):
            continue
        keys.append(_sort_key(model, mapper, key, descending))
    for column in mapper.primary_key:
        prop = mapper.get_property_by_column(column)
        if not any(existing.key == prop.key for existing in keys):
            keys.append(_sort_key(model, mapper, prop.key, False))
    return keys


def sort_joins(keys: Sequence[SortKey]) -> list[Any]:
    """The outer joins ``keys`` need, in order (none for columns of the entity itself)."""
    return [join for k in keys for join in k.joins]


def _orderable_path(model: type[Any], key: str) -> tuple[ColumnElement[Any], tuple[Any, ...]]:
    """The column and joins of a many-to-one path, refused if its type cannot be ordered."""
    column, joins = path_column(model, key)
    if not is_orderable(getattr(column, "type", None) or NullType()):
        raise PaginationError(
            f"cannot sort {model.__name__} by a path whose column cannot be ordered "
            "(JSON, ARRAY, binary or pickled values)"
        )
    return column, joins


def _sort_key(model: type[Any], mapper: Mapper[Any], key: str, descending: bool) -> SortKey:
    if "." in key:
        column, joins = _orderable_path(model, key)
        return SortKey(key, column, descending, True, joins)
    columns = mapper.column_attrs[key].columns
    nullable = any(getattr(col, "nullable", True) for col in columns)
    return SortKey(key, getattr(model, key), descending, nullable)


def _key_and_direction(
    model: type[Any],
    mapper: Mapper[Any],
    item: object,
    allowed: Sequence[str],
    paths_open: bool,
) -> tuple[str, bool]:
    """``paths_open``: no ``sortable`` narrows the sort, so any many-to-one path may be
    named (:func:`_sort_key` checks it); with ``sortable``, only the paths it lists."""
    valid = sorted(allowed)
    if isinstance(item, str):
        descending = item.startswith("-")
        name = item.lstrip("+-")
        if name in allowed or (paths_open and "." in name):
            return name, descending
        raise UnknownFieldError(
            model,
            name,
            valid,
            message=f"{model.__name__} cannot be sorted by that field; sortable fields: "
            f"{', '.join(valid)} ('-' before a name for descending)",
        )
    key, descending = _attribute_and_direction(model, mapper, item)
    if key is not None and key in allowed:
        return key, descending
    example = valid[0] if valid else "id"
    raise PaginationError(
        f"cannot sort {model.__name__} by {item!r}; sort by one of its sortable attributes "
        f"(e.g. {model.__name__}.{example} or {model.__name__}.{example}.desc()), "
        f"or by a name among: {', '.join(valid)}"
    )


def _attribute_and_direction(
    model: type[Any], mapper: Mapper[Any], item: object
) -> tuple[str | None, bool]:
    """The attribute key (``None``: not one of ``model``) and direction of a non-string item."""
    descending = False
    element: object = item
    if isinstance(item, UnaryExpression):
        modifier = item.modifier
        if modifier not in (operators.desc_op, operators.asc_op):
            raise PaginationError(f"sort accepts .asc() or .desc() of a column, got {item!r}")
        descending = modifier is operators.desc_op
        element = item.element
    if isinstance(element, InstrumentedAttribute):
        owner: Any = element.class_
        if isinstance(owner, type) and issubclass(model, owner):
            return element.key, descending
    elif isinstance(element, ColumnElement):
        try:
            prop = mapper.get_property_by_column(typing.cast(Any, element))
        except Exception:  # not a column of this entity's table
            prop = None
        if prop is not None:
            return prop.key, descending
    return None, descending


def order_clauses(keys: Sequence[SortKey]) -> list[ColumnElement[Any]]:
    """``ORDER BY`` clauses for ``keys``, with the portable ``NULL`` placement."""
    clauses: list[ColumnElement[Any]] = []
    for k in keys:
        if k.nullable:
            is_null = k.column.is_(None)
            clauses.append(is_null.desc() if k.descending else is_null.asc())
        clauses.append(k.column.desc() if k.descending else k.column.asc())
    return clauses


def keyset_after(keys: Sequence[SortKey], values: Sequence[Any]) -> ColumnElement[bool]:
    """The rows that come after a row with ``values`` in the order of :func:`order_clauses`.

    ``(k1 after v1) OR (k1 = v1 AND k2 after v2) OR ...``, spelled out rather than as a
    row-value comparison so mixed directions and ``NULL`` s work on every database.
    """
    disjuncts: list[ColumnElement[bool]] = []
    equal: list[ColumnElement[bool]] = []
    for k, value in zip(keys, values, strict=True):
        after = _after(k, value)
        if after is not None:
            disjuncts.append(and_(*equal, after))
        equal.append(k.column.is_(None) if value is None else k.column == value)
    return or_(*disjuncts) if disjuncts else false()


def _after(k: SortKey, value: Any) -> ColumnElement[bool] | None:
    if value is None:  # NULLs come last ascending and first descending
        return k.column.is_not(None) if k.descending else None
    beyond = k.column < value if k.descending else k.column > value
    if k.nullable and not k.descending:
        return or_(beyond, k.column.is_(None))
    return typing.cast("ColumnElement[bool]", beyond)
