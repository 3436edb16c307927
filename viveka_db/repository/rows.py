"""``insert_all``'s and ``upsert_all``'s input (entities, dicts) read into complete rows.

:func:`prepare_batch` turns the input into a :class:`ColumnBatch`, the values column by
column, which is what ``COPY`` records and multi-row ``VALUES`` lists are built from;
:func:`prepare_rows` into row dicts (``upsert_all`` groups those). Both read the input
without changing it (the caller may still choose the unit of work) and complete it with
the one default-filling algorithm of the bulk paths,
:func:`~viveka_db.repository.bulk_defaults.fill_columns`. Dicts are read as they are,
never copied per row; their entities are built by the library, while the server draws keys
or after the insert (:mod:`~viveka_db.repository.bulk_attach`).

The rest of the bulk machinery is re-exported here, where it lived before it was split:
the per-class plan (:mod:`~viveka_db.repository.bulk_plan`) and the steps that make the
inserted entities persistent (:mod:`~viveka_db.repository.bulk_attach`).
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import repeat
from operator import attrgetter, is_
from typing import Any

from sqlalchemy import Column
from sqlalchemy.orm import InstanceState
from sqlalchemy.orm.attributes import instance_state

from viveka_db.errors import UnknownFieldError
from viveka_db.repository.bulk_defaults import FilledColumns, fill_columns, row_dicts
from viveka_db.repository.bulk_plan import BulkPlan, DefaultContext, all_same, plan_for

__all__ = [
    "BulkPlan",
    "ColumnBatch",
    "DefaultContext",
    "PreparedRows",
    "all_same",
    "plan_for",
    "prepare_batch",
    "prepare_rows",
]

_Row = dict[str, Any]
_get: Callable[[_Row, str, Any], Any] = _Row.get
_dict_of = attrgetter("__dict__")
_key_of = attrgetter("key")
_session_id_of = attrgetter("session_id")


@dataclass
class ColumnBatch:
    """``insert_all``'s rows column by column (in ``plan.keys`` order).

    Built by :func:`prepare_batch` without changing any entity: the caller may still choose
    the unit of work. In a ``fast`` batch every column is complete; the generated primary
    key's column holds ``None`` where the database is to generate the key.
    """

    instances: list[Any]
    """The entity of each row, ``None`` for a row given as a mapping (until it is built)."""
    columns: list[list[Any]]
    """One list of values per column (empty unless ``fast``)."""
    written: list[bool]
    """Per column: whether it holds values the entities do not have yet (defaults, keys)."""
    rows: list[dict[str, Any]] | None
    """Complete row dicts of a batch that is not ``fast`` and had mappings (the unit of work
    builds their entities)."""
    missing_pk: int
    """How many rows still need a database-generated primary key."""
    fast: bool
    """Whether the rows may skip the unit of work (plain transient entities or dicts)."""
    shared: dict[str, Any] = field(default_factory=dict[str, Any])
    """Columns no entity has, filled with one value for all (a constant or the statement's
    timestamp): written into the entities with one ``dict.update`` each."""
    dicts: list[dict[str, Any]] | None = None
    """The entities' ``__dict__`` (a batch of entities, or of dicts once they are built)."""
    states: list[InstanceState[Any]] | None = None
    """The entities' states (as ``dicts``)."""
    mappings: bool = False
    """Every row came from a mapping: its entity is built from the columns after the insert
    (but for the first ``built``)."""
    built: int = 0
    """How many leading rows of a batch of ``mappings`` have their entity built already
    (``instances``, ``dicts`` and ``states`` hold those)."""
    attached: int = 0
    """How many leading rows :func:`~viveka_db.repository.bulk_attach.attach_alongside`
    made persistent already."""

    def __len__(self) -> int:
        return len(self.instances)

    def fill_keys(self, plan: BulkPlan, idents: Iterable[Any]) -> None:
        """Put generated keys, in row order, where the key column has ``None``."""
        position = plan.keys.index(typing.cast(str, plan.pk_key))
        column = self.columns[position]
        if self.missing_pk == len(column):
            column[:] = idents
        else:
            it = iter(idents)
            column[:] = [next(it) if value is None else value for value in column]
        self.written[position] = True

    def unit_of_work_rows(self, plan: BulkPlan) -> list[dict[str, Any]] | None:
        """Row dicts of the rows given as mappings, for the unit of work to build their
        entities from (a ``fast`` batch a fast path turned down has only its columns)."""
        if self.rows is None and self.fast and any(map(is_, self.instances, repeat(None))):
            filled = FilledColumns(self.columns, self.written, self.missing_pk)
            self.rows = row_dicts(plan, filled)
        return self.rows

    def key_columns(self, plan: BulkPlan) -> list[list[Any]] | None:
        """The values of the mapper's primary key columns, in its order (fast batch)."""
        by_column = dict(zip(plan.columns, self.columns, strict=True))
        out: list[list[Any]] = []
        for column in plan.mapper.primary_key:
            values = by_column.get(typing.cast("Column[Any]", column))
            if values is None:
                return None
            out.append(values)
        return out


@dataclass
class PreparedRows:
    """Row dicts (attribute key -> value) and the entity instance each one belongs to."""

    rows: list[dict[str, Any]]
    instances: list[Any]
    """The entity each row came from, ``None`` for a mapping."""
    missing_pk: int
    """How many rows still need a database-generated primary key."""
    fast: bool
    """Whether the rows may skip the unit of work (plain transient entities or dicts)."""


def prepare_batch(plan: BulkPlan, items: Iterable[Any]) -> ColumnBatch:
    """Turn entities and mappings into complete columns, defaults applied.

    The two usual inputs, entities of the plan's own class and plain dicts, are read column
    by column straight from their ``__dict__`` or themselves; a mix goes through
    :func:`_read_sources`. Nothing is changed on the entities yet.
    """
    items = list(items)
    model = plan.mapper.class_
    if items and all(map(is_, map(type, items), repeat(model))):
        return _entity_batch(plan, items)
    if items and all(map(is_, map(type, items), repeat(dict))):
        _check_fields(plan, items)
        filled = fill_columns(plan, items)
        return _batch(plan, [None] * len(items), filled, plan.unfit is None, mappings=True)
    sources, instances, fast = _read_sources(plan, items)
    filled = fill_columns(plan, sources)
    return _batch(plan, instances, filled, fast and plan.unfit is None)


def prepare_rows(plan: BulkPlan, items: Iterable[Any]) -> PreparedRows:
    """Turn entities and mappings into complete row dicts, defaults applied (the row of a
    value only the database computes, or of a key it generates, lacks it)."""
    sources, instances, fast = _read_sources(plan, list(items))
    filled = fill_columns(plan, sources)
    fast = fast and plan.unfit is None and not filled.server_gaps
    return PreparedRows(row_dicts(plan, filled), instances, filled.missing_pk, fast)


def _batch(
    plan: BulkPlan,
    instances: list[Any],
    filled: FilledColumns,
    fast: bool,
    *,
    mappings: bool = False,
) -> ColumnBatch:
    """The batch of rows read from dicts (or a mix): their entities get every value, as a
    flush leaves them; only the unit of work can insert rows lacking a server-side value."""
    fast = fast and not filled.server_gaps
    return ColumnBatch(
        instances=instances,
        columns=filled.columns if fast else [],
        written=[True] * len(filled.columns) if fast else [],
        rows=None
        if fast or not any(map(is_, instances, repeat(None)))
        else row_dicts(plan, filled),
        missing_pk=filled.missing_pk,
        fast=fast,
        mappings=mappings and fast,
    )


def _entity_batch(plan: BulkPlan, items: list[Any]) -> ColumnBatch:
    """:func:`prepare_batch` of entities of the plan's own class, a column at a time.

    Not ``fast`` (the unit of work must insert them) when one is not transient, has a
    related object set, or lacks a value only the database can compute.
    """
    slow = ColumnBatch(items, [], [], None, 0, False)
    states: list[InstanceState[Any]] = list(map(instance_state, items))
    if plan.unfit is not None or not _all_transient(states):
        return slow
    dicts: list[dict[str, Any]] = list(map(_dict_of, items))
    for rel in plan.relationships:
        if any(map(_get, dicts, repeat(rel), repeat(None))):
            return slow
    filled = fill_columns(plan, dicts)
    if filled.server_gaps:
        return slow
    return ColumnBatch(
        items,
        filled.columns,
        filled.written,
        None,
        filled.missing_pk,
        True,
        shared=filled.shared,
        dicts=dicts,
        states=states,
    )


def _all_transient(states: list[InstanceState[Any]]) -> bool:
    """Whether no state is persistent, pending or detached (C speed)."""
    return all(map(is_, map(_key_of, states), repeat(None))) and all(
        map(is_, map(_session_id_of, states), repeat(None))
    )


def _check_fields(plan: BulkPlan, mappings: list[Mapping[str, Any]]) -> None:
    """Refuse a mapping naming an attribute the entity lacks (a typo never reaches SQL)."""
    keyset = set(plan.keys)
    if all(map(keyset.issuperset, mappings)):
        return
    for mapping in mappings:
        unknown = sorted(set(mapping) - keyset)
        if unknown:
            raise UnknownFieldError(plan.mapper.class_, unknown[0], plan.keys)


def _read_sources(plan: BulkPlan, items: list[Any]) -> tuple[list[_Row], list[Any], bool]:
    """The values of each item (an entity's ``__dict__``, a mapping as a dict), the entity
    of each row (``None`` for a mapping), and whether the rows may still skip the unit of
    work (no entity is persistent, of a subclass, or has a related object set)."""
    model = plan.mapper.class_
    relationships = plan.relationships
    sources: list[_Row] = []
    instances: list[Any] = []
    fast = True
    for item in items:
        if isinstance(item, model):
            state: InstanceState[Any] = instance_state(item)
            source = item.__dict__
            fast = fast and (
                type(item) is model
                and state.key is None
                and state.session_id is None
                and not any(source.get(rel) for rel in relationships)
            )
            sources.append(source)
            instances.append(item)
        elif isinstance(item, Mapping):
            mapping = typing.cast("Mapping[str, Any]", item)
            _check_fields(plan, [mapping])
            sources.append(dict(mapping))
            instances.append(None)
        else:
            raise TypeError(
                f"expected {model.__name__} instances or dicts of its fields, "
                f"got {type(item).__name__}"
            )
    return sources, instances, fast
