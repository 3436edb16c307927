"""Entities and dicts to table rows and back, for the bulk paths that bypass the flush.

A :class:`BulkPlan` describes, once per entity class, what a row needs: the columns, the
Python-side defaults to apply (the unit of work is skipped, so nothing else applies them),
the generated primary key, and whether the entity is *plain* enough for a fast path (one
table, no inheritance, no SQL-side defaults, no insert events). ``insert_all`` turns its
input into a :class:`ColumnBatch` (:func:`prepare_batch`): the values column by column,
which is what ``COPY`` records and multi-row ``VALUES`` lists are built from.
:func:`materialize` writes generated values into the entities and
:func:`attach_persistent` makes them persistent in the session, as a flush would have.

Attaching without a flush has no public SQLAlchemy API at bulk speed: the public route
(:func:`~sqlalchemy.orm.make_transient_to_detached` + ``Session.add``, plus a session
event that makes the entities transient again on rollback, :func:`attach_public`) costs
about 20 us per entity, more than ``COPY`` spends on a row. So the fast route writes the
same state SQLAlchemy's flush writes, and is used only on SQLAlchemy versions it was
verified against (:data:`FAST_ATTACH`: 2.0 from 2.0.43 and 2.1, with every private name
it touches present); any other version takes the public route. ``tests/repository/
test_attach.py`` checks that both leave the session in the same state.

The per-row work of those three steps is done by C-level iteration (``map``/``zip`` over
``dict.get``, ``dict.__setitem__``, ``dict.update``) rather than Python loops: at 100,000
rows, each Python-level operation per row costs about as much as ``COPY`` spends on the row.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import re
import typing
import weakref
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import repeat
from operator import attrgetter, contains, is_
from typing import Any

import sqlalchemy
from sqlalchemy import Column, Table, event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import (
    InstanceState,
    Mapper,
    Session,
    SessionTransaction,
    make_transient,
    make_transient_to_detached,
)
from sqlalchemy.orm.attributes import instance_state

from viveka_db.errors import UnknownFieldError
from viveka_db.tenancy.filters import is_tenant_scoped
from viveka_db.tenancy.writes import check_tenant_values

__all__ = [
    "FAST_ATTACH",
    "BulkPlan",
    "ColumnBatch",
    "PreparedRows",
    "all_same",
    "attach_alongside",
    "attach_persistent",
    "attach_public",
    "detach_attached",
    "collector_paused",
    "materialize",
    "plan_for",
    "prepare_batch",
    "prepare_rows",
]

_Row = dict[str, Any]
_get: Callable[[_Row, str, Any], Any] = _Row.get
_set: Callable[[_Row, str, Any], None] = _Row.__setitem__
_getitem: Callable[[_Row, str], Any] = _Row.__getitem__
_update: Callable[[_Row, _Row], None] = _Row.update
_clear: Callable[[_Row], None] = _Row.clear
_setdefault: Callable[[_Row, str, Any], Any] = _Row.setdefault
_pop: Callable[[_Row, str, Any], Any] = _Row.pop
GC_PAUSE_ROWS = 2_000
"""From this many rows on, :func:`collector_paused` pauses the cyclic garbage collector."""
_dict_of = attrgetter("__dict__")
_key_of = attrgetter("key")
_session_id_of = attrgetter("session_id")
_committed_of = attrgetter("committed_state")
_expired_of = attrgetter("expired_attributes")
_consume = deque[Any](maxlen=0).extend
"""Runs an iterator to its end at C speed (for ``map`` over ``dict.__setitem__`` etc.)."""


def _fast_attach_verified(version: str = sqlalchemy.__version__) -> bool:
    """Whether :func:`attach_persistent`'s private route fits this SQLAlchemy.

    Verified on 2.0.43+ and 2.1 (the flush's bookkeeping is the same in both); the names it
    writes must also all be there, so a patch release that renames one falls back too.
    """
    match = re.match(r"(\d+)\.(\d+)\.(\d+)", version)
    if match is None:
        return False
    major, minor, patch = map(int, match.groups())
    if not (((major, minor) == (2, 0) and patch >= 43) or (major, minor) == (2, 1)):
        return False
    imap: Any = Session().identity_map
    return (
        isinstance(getattr(imap, "_dict", None), dict)
        and isinstance(getattr(imap, "_modified", None), set)
        and isinstance(getattr(imap, "_wr", None), weakref.ref)
        and callable(getattr(imap, "_add_unpresent", None))
        and callable(getattr(imap, "replace", None))
        and all(hasattr(InstanceState, name) for name in _STATE_FIELDS)
    )


_STATE_FIELDS = ("session_id", "_instance_dict", "modified", "expired", "_strong_obj", "key")
"""The instance-state fields a flush writes and :func:`attach_persistent` writes too."""


FAST_ATTACH: bool = _fast_attach_verified()
"""Whether :func:`attach_persistent` may write the flush's private bookkeeping directly
(this SQLAlchemy version was verified); otherwise it takes :func:`attach_public`."""


def all_same(values: list[Any]) -> bool:
    """Whether every item of non-empty ``values`` is the very same object (C speed; the
    last item is looked at first, which settles most columns that are not)."""
    first = values[0]
    return values[-1] is first and all(map(is_, values, repeat(first)))


class DefaultContext:
    """What a column-default callable receives in place of SQLAlchemy's execution context.

    Shared by all rows of one call, so statement-level defaults (``statement_utc_now``)
    give every row the same instant, as one executemany would.
    """

    def __init__(self) -> None:
        self.current_parameters: dict[str, Any] = {}

    def get_current_parameters(self, isolate_multiinsert_groups: bool = True) -> dict[str, Any]:
        return self.current_parameters


@dataclass(eq=False)
class BulkPlan:
    """How rows of one entity are built; ``unfit`` says why the fast paths cannot be used."""

    mapper: Mapper[Any]
    table: Table
    columns: list[Column[Any]]
    keys: list[str]
    """Attribute key of each column, same order."""
    defaults: dict[str, Any] = field(default_factory=dict[str, Any])
    """Attribute key -> scalar default or callable(context)."""
    generated_pk: Column[Any] | None = None
    """The single auto-increment primary key column the database generates, if any."""
    server_side: set[str] = field(default_factory=set[str])
    """Attribute keys whose value the database computes when none is given."""
    relationships: tuple[str, ...] = ()
    unfit: str | None = None
    pk_key: str | None = None
    """Attribute key of ``generated_pk``."""
    context_free: bool = True
    """Whether no per-row default callable reads its context (the row built so far), so
    entities can be prepared column by column (:func:`prepare_batch`)."""
    tenant_key: str | None = None
    """``tenant_id`` of a tenant-scoped entity: its values are checked against the
    current tenant (:func:`~viveka_db.tenancy.writes.check_tenant_values`)."""


_plans: dict[Mapper[Any], BulkPlan] = {}


def plan_for(mapper: Mapper[Any]) -> BulkPlan:
    plan = _plans.get(mapper)
    if plan is None:
        plan = _plans[mapper] = _build_plan(mapper)
    return plan


def _first_version(generator: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A column default giving a new row the version the ORM would (``generator(None)``)."""

    def first(context: Any) -> Any:
        return generator(None)

    first.viveka_context_free = True  # type: ignore[attr-defined]
    return first


def _context_free(default: Callable[[Any], Any]) -> bool:
    """Whether a column-default callable ignores its context argument.

    True for SQLAlchemy's wrapper of a zero-argument callable (``default=uuid.uuid4``),
    which keeps the original as ``__wrapped__``, and for the version default above.
    """
    if getattr(default, "viveka_context_free", False):
        return True
    wrapped = getattr(default, "__wrapped__", None)
    if wrapped is None:
        return False
    try:
        parameters = inspect.signature(wrapped).parameters.values()
    except (TypeError, ValueError):
        return False
    return not any(
        p.default is inspect.Parameter.empty
        and p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        for p in parameters
    )


def _per_row(default: Any) -> bool:
    """Whether a column default is called for every row (``uuid4``), not once per statement
    (``statement_utc_now``, one instant for all rows, as one executemany gives) or a constant."""
    return callable(default) and not getattr(default, "viveka_per_statement", False)


def _build_plan(mapper: Mapper[Any]) -> BulkPlan:
    """The :class:`BulkPlan` of ``mapper``; the first reason found against the fast paths
    wins as ``unfit``."""
    unfit = _unfit_mapping(mapper)
    table: Any = mapper.local_table if unfit is None else mapper.persist_selectable
    mapped = _MappedColumns(mapper, table)
    unfit = unfit or mapped.unfit
    generated_pk = _generated_pk(mapper, table, mapped)
    version_unfit = _version_default(mapper, mapped.defaults)  # adds to the defaults
    unfit = unfit or version_unfit
    dispatch = mapper.dispatch
    if dispatch.before_insert or dispatch.after_insert:
        unfit = unfit or "before_insert/after_insert listeners"
    return BulkPlan(
        mapper=mapper,
        table=table,
        columns=mapped.columns,
        keys=mapped.keys,
        defaults=mapped.defaults,
        generated_pk=generated_pk,
        server_side=mapped.server_side,
        relationships=tuple(mapper.relationships.keys()),
        unfit=unfit,
        pk_key=None if generated_pk is None else mapper.get_property_by_column(generated_pk).key,
        context_free=_all_context_free(mapped.defaults),
        tenant_key="tenant_id"
        if is_tenant_scoped(mapper.class_) and "tenant_id" in mapped.keys
        else None,
    )


def _unfit_mapping(mapper: Mapper[Any]) -> str | None:
    """Why rows of ``mapper`` cannot go to one table as they are, if they cannot."""
    if (
        not isinstance(mapper.local_table, Table)
        or mapper.inherits is not None
        or mapper.polymorphic_on is not None
    ):
        return "inheritance or a non-table mapping"
    return None


class _MappedColumns:
    """The mapped columns of ``table``, their attribute keys and what fills them when a row
    lacks a value: a Python-side default (``defaults``) or the database (``server_side``)."""

    def __init__(self, mapper: Mapper[Any], table: Any) -> None:
        self.columns: list[Column[Any]] = []
        self.keys: list[str] = []
        self.defaults: dict[str, Any] = {}
        self.server_side: set[str] = set()
        self.unfit: str | None = None
        for column in table.columns:
            try:
                prop = mapper.get_property_by_column(column)
            except Exception:
                self.unfit = self.unfit or f"column {column.name} is not mapped"
                continue
            self.columns.append(column)
            self.keys.append(prop.key)
            self._add_default(prop.key, column)

    def _add_default(self, key: str, column: Column[Any]) -> None:
        """Record what fills ``column`` when a row lacks its value."""
        default: Any = column.default
        if default is not None:
            if getattr(default, "is_scalar", False) or getattr(default, "is_callable", False):
                self.defaults[key] = getattr(default, "arg", None)
            else:
                self.server_side.add(key)  # SQL expression or sequence
        if column.server_default is not None:
            self.server_side.add(key)


def _generated_pk(mapper: Mapper[Any], table: Any, mapped: _MappedColumns) -> Column[Any] | None:
    """The single auto-increment primary key the database generates (no longer counted
    among ``mapped.server_side``: a row without it is still complete)."""
    pk: list[Any] = [*mapper.primary_key]
    if len(pk) != 1 or pk[0] is not getattr(table, "autoincrement_column", None):
        return None
    key = next(k for k, c in zip(mapped.keys, mapped.columns, strict=True) if c is pk[0])
    mapped.server_side.discard(key)
    return pk[0]


def _version_default(mapper: Mapper[Any], defaults: dict[str, Any]) -> str | None:
    """Add the version counter's first value to ``defaults``; why not, if it cannot be."""
    version: Any = mapper.version_id_col
    if version is None:
        return None
    vkey = mapper.get_property_by_column(version).key
    if vkey in defaults:
        return None
    generator: Any = mapper.version_id_generator
    if generator is False:
        return "server-side version counter"
    defaults[vkey] = _first_version(generator)
    return None


def _all_context_free(defaults: dict[str, Any]) -> bool:
    """Whether no per-row default callable reads its context (see ``BulkPlan.context_free``)."""
    return all(_context_free(default) for default in defaults.values() if _per_row(default))


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


def prepare_rows(plan: BulkPlan, items: Iterable[Any]) -> PreparedRows:
    """Turn entities and mappings into complete rows, defaults applied.

    Mappings are checked against the mapped attribute names (a typo never reaches SQL).
    Nothing is changed on the entities yet: the caller may still choose the unit of work.
    The rows are read first (:func:`_read_rows`), then completed a column at a time
    (:func:`_complete_rows`): each row ends up as one pass per row would leave it.
    """
    rows, instances, fast = _read_rows(plan, items)
    missing_pk = _complete_rows(plan, rows)
    if plan.tenant_key is not None and rows:
        key = plan.tenant_key
        values = check_tenant_values(plan.table.name, [row.get(key) for row in rows])
        _consume(map(_set, rows, repeat(key), values))
    server_side = plan.server_side
    if fast and server_side and not all(map(server_side.issubset, rows)):
        fast = False  # the database must compute a value: only the unit of work can
    return PreparedRows(rows, instances, missing_pk, fast)


def _read_rows(plan: BulkPlan, items: Iterable[Any]) -> tuple[list[_Row], list[Any], bool]:
    """The values each item has (a new dict per row), the entity of each row (``None`` for a
    mapping), and whether the rows may still skip the unit of work."""
    model = plan.mapper.class_
    keys = plan.keys
    keyset = set(keys)
    relationships = plan.relationships
    rows: list[_Row] = []
    instances: list[Any] = []
    fast = plan.unfit is None
    for item in items:
        if type(item) is model:
            state: InstanceState[Any] = instance_state(item)
            if state.key is not None or state.session_id is not None:
                fast = False
            source = item.__dict__
            if relationships and fast and any(source.get(rel) for rel in relationships):
                fast = False
            rows.append({key: source[key] for key in keys if key in source})
            instances.append(item)
        elif isinstance(item, Mapping):
            mapping = typing.cast("Mapping[str, Any]", item)
            if not keyset.issuperset(mapping):
                unknown = sorted(set(mapping) - keyset)
                raise UnknownFieldError(model, unknown[0], keys)
            rows.append(dict(mapping))
            instances.append(None)
        elif isinstance(item, model):  # a subclass: only the unit of work maps it right
            fast = False
            source = item.__dict__
            rows.append({key: source[key] for key in keys if key in source})
            instances.append(item)
        else:
            raise TypeError(
                f"expected {model.__name__} instances or dicts of its fields, "
                f"got {type(item).__name__}"
            )
    return rows, instances, fast


def _complete_rows(plan: BulkPlan, rows: list[_Row]) -> int:
    """Give ``rows`` what they lack: defaults, then ``None``; drop a missing or ``None``
    generated key. Returns how many rows need the database to generate their key.

    Constants and once-per-statement values are set column by column at C speed; only
    per-row callables run for every row, in row order, and see (as their context's current
    parameters) the row as one pass would have built it so far: its own values, the
    constants and the per-row defaults before theirs.
    """
    ctx = DefaultContext()
    per_row: list[tuple[str, Any]] = []
    for key, default in plan.defaults.items():
        if _per_row(default):
            per_row.append((key, default))
            continue
        value = default(ctx) if callable(default) else default
        _consume(map(_setdefault, rows, repeat(key), repeat(value)))
    if per_row:
        for row in rows:
            ctx.current_parameters = row
            for key, default in per_row:
                if key not in row:
                    row[key] = default(ctx)
    pk_key = plan.pk_key
    filled = plan.server_side.union(plan.defaults, (pk_key,))
    for key in plan.keys:
        if key not in filled:
            _consume(map(_setdefault, rows, repeat(key), repeat(None)))
    if pk_key is None:
        return 0
    lacking = [row for row in rows if row.get(pk_key) is None]
    _consume(map(_pop, lacking, repeat(pk_key), repeat(None)))
    return len(lacking)


@dataclass
class ColumnBatch:
    """``insert_all``'s rows column by column (in ``plan.keys`` order).

    Built by :func:`prepare_batch` without changing any entity: the caller may still choose
    the unit of work. In a ``fast`` batch every column is complete; the generated primary
    key's column holds ``None`` where the database is to generate the key.
    """

    instances: list[Any]
    """The entity of each row, ``None`` for a row given as a mapping."""
    columns: list[list[Any]]
    """One list of values per column (empty unless ``fast``)."""
    written: list[bool]
    """Per column: whether it holds values the entities do not have yet (defaults, keys)."""
    rows: list[dict[str, Any]] | None
    """Row dicts when the input had mappings (entities of them are made from these)."""
    missing_pk: int
    """How many rows still need a database-generated primary key."""
    fast: bool
    """Whether the rows may skip the unit of work (plain transient entities or dicts)."""
    shared: dict[str, Any] = field(default_factory=dict[str, Any])
    """Columns no entity has, filled with one value for all (a constant or the statement's
    timestamp): written into the entities with one ``dict.update`` each."""
    dicts: list[dict[str, Any]] | None = None
    """The entities' ``__dict__`` (entities only)."""
    states: list[InstanceState[Any]] | None = None
    """The entities' states (entities only)."""
    attached: int = 0
    """How many leading rows :func:`attach_alongside` made persistent already."""

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


def prepare_batch(plan: BulkPlan, items: Iterable[Any]) -> ColumnBatch:
    """Turn entities and mappings into complete columns, defaults applied.

    Entities of the plan's own class (the usual case) are read column by column straight
    from their ``__dict__``; anything else goes through :func:`prepare_rows`. Nothing is
    changed on the entities yet.
    """
    items = list(items)
    model = plan.mapper.class_
    if (
        items
        and plan.unfit is None
        and plan.context_free
        and all(map(is_, map(type, items), repeat(model)))
    ):
        return _entity_batch(plan, items)
    prepared = prepare_rows(plan, items)
    rows = prepared.rows
    columns = (
        [list(map(_get, rows, repeat(key), repeat(None))) for key in plan.keys]
        if prepared.fast
        else []
    )
    return ColumnBatch(
        instances=prepared.instances,
        columns=columns,
        written=[True] * len(columns),  # entities get every value, as a flush leaves them
        rows=rows,
        missing_pk=prepared.missing_pk,
        fast=prepared.fast,
    )


def _entity_batch(plan: BulkPlan, items: list[Any]) -> ColumnBatch:
    """:func:`prepare_batch` of entities of the plan's own class, a column at a time.

    Not ``fast`` (the unit of work must insert them) when one is not transient, has a
    related object set, or lacks a value only the database can compute.
    """
    slow = ColumnBatch(items, [], [], None, 0, False)
    states: list[InstanceState[Any]] = list(map(instance_state, items))
    if not _all_transient(states):
        return slow
    dicts: list[dict[str, Any]] = list(map(_dict_of, items))
    for rel in plan.relationships:
        if any(map(_get, dicts, repeat(rel), repeat(None))):
            return slow
    filler = _ColumnFiller(dicts)
    defaults = plan.defaults
    pk_key = plan.pk_key
    columns: list[list[Any]] = []
    written: list[bool] = []
    missing_pk = 0
    for key in plan.keys:
        column, missing = _read_column(dicts, key)
        if key == pk_key:
            missing_pk = _count_none(column, missing)
            missing = 0  # written once the keys are known (ColumnBatch.fill_keys)
        elif missing:
            if key not in defaults and key in plan.server_side:
                return slow  # the database must compute it: only the unit of work can
            column, missing = filler.fill(key, column, missing, defaults.get(key))
        if key == plan.tenant_key:
            if None in column:
                missing = max(missing, 1)  # the entities get the filled-in tenant
            column = check_tenant_values(plan.table.name, column)
        columns.append(column)
        written.append(missing > 0)
    return ColumnBatch(
        items,
        columns,
        written,
        None,
        missing_pk,
        True,
        shared=filler.shared,
        dicts=dicts,
        states=states,
    )


def _all_transient(states: list[InstanceState[Any]]) -> bool:
    """Whether no state is persistent, pending or detached (C speed)."""
    return all(map(is_, map(_key_of, states), repeat(None))) and all(
        map(is_, map(_session_id_of, states), repeat(None))
    )


def _read_column(dicts: list[_Row], key: str) -> tuple[list[Any], int]:
    """The values of ``key`` (``None`` where absent) and how many dicts lack it.

    One pass when every dict has it (a ``KeyError`` at once when none has).
    """
    try:
        return list(map(_getitem, dicts, repeat(key))), 0
    except KeyError:
        pass
    present = sum(map(contains, dicts, repeat(key)))
    if not present:
        return [None] * len(dicts), len(dicts)
    return list(map(_get, dicts, repeat(key), repeat(None))), len(dicts) - present


def _count_none(column: list[Any], missing: int) -> int:
    """How many values of ``column`` are ``None``; ``missing`` of them were absent."""
    return missing if missing == len(column) else sum(map(is_, column, repeat(None)))


class _ColumnFiller:
    """Fills the gaps of an entity batch's columns with their defaults.

    One context for the whole batch, so once-per-statement defaults agree across columns
    and rows; a value every entity lacks is kept once in ``shared`` instead of per entity.
    """

    def __init__(self, dicts: list[_Row]) -> None:
        self.dicts = dicts
        self.ctx = DefaultContext()
        self.shared: dict[str, Any] = {}

    def fill(
        self, key: str, column: list[Any], missing: int, default: Any
    ) -> tuple[list[Any], int]:
        """``column`` with its ``missing`` gaps filled, and how many of its values the
        entities still need written (0 when they get it through ``shared``)."""
        count = len(column)
        absent = (  # which entities lack it, when only some do
            None
            if missing == count
            else [not here for here in map(contains, self.dicts, repeat(key))]
        )
        ctx = self.ctx
        if _per_row(default):  # each missing value gets its own call, in row order
            if absent is None:
                return [default(ctx) for _ in range(count)], missing
            filled = [
                default(ctx) if gap else value for value, gap in zip(column, absent, strict=True)
            ]
            return filled, missing
        value = default(ctx) if callable(default) else default  # once, like one executemany
        if absent is None:
            self.shared[key] = value
            return [value] * count, 0  # written through ``shared``
        return [value if gap else old for old, gap in zip(column, absent, strict=True)], missing


def materialize(plan: BulkPlan, batch: ColumnBatch) -> list[Any]:
    """The entities of inserted rows: given ones get their generated values, mappings
    become entities built the way a query result builds them (no ``__init__``)."""
    keys = plan.keys
    instances = batch.instances
    dicts = batch.dicts
    if dicts is not None:  # entities only: write what they lack, column by column
        if batch.shared:
            _consume(map(_update, dicts, repeat(batch.shared)))
        for key, column, written in zip(keys, batch.columns, batch.written, strict=True):
            if written:
                _consume(map(_set, dicts, repeat(key), column))
        return instances
    manager = plan.mapper.class_manager
    out: list[Any] = []
    for instance, values in zip(instances, zip(*batch.columns, strict=True), strict=True):
        if instance is None:
            instance = manager.new_instance()
        instance.__dict__.update(zip(keys, values, strict=True))
        out.append(instance)
    return out


ATTACH_CHUNK = 5_000
"""Rows :func:`attach_alongside` handles between two chances for the ``COPY`` to run."""


async def attach_alongside(session: AsyncSession, plan: BulkPlan, batch: ColumnBatch) -> None:
    """:func:`materialize` + :func:`attach_persistent` of an entity batch, in chunks, while
    its ``COPY`` runs.

    The ``COPY`` is streamed by this same thread, which waits whenever the server has not
    yet taken what was sent (flow control) and at the end for the server to finish. This
    task fills those waits with the bookkeeping the entities need anyway, a chunk at a
    time. The entities of a failed ``COPY`` are made transient again
    (:func:`detach_attached`). Only for batches of entities (``batch.dicts``); keys
    must be known (drawn from the sequence) before the ``COPY`` starts.
    """
    dicts, states = batch.dicts, batch.states
    key_columns = batch.key_columns(plan)
    if dicts is None or states is None or key_columns is None:
        return
    keys, columns = plan.keys, batch.columns
    instances = batch.instances
    shared = batch.shared
    written = [
        (key, column)
        for key, column, wrote in zip(keys, columns, batch.written, strict=True)
        if wrote
    ]
    total = len(instances)
    # the keys are unique (the table's primary key); only a pre-existing entry can clash,
    # so an identity map empty at the start needs no check per chunk
    new_keys = not session.sync_session.identity_map
    for start in range(0, total, ATTACH_CHUNK):
        stop = min(start + ATTACH_CHUNK, total)
        part = dicts[start:stop]
        with collector_paused(stop - start):
            if shared:
                _consume(map(_update, part, repeat(shared)))
            for key, column in written:
                _consume(map(_set, part, repeat(key), column[start:stop]))
            attach_persistent(
                session,
                plan.mapper,
                instances[start:stop],
                states=states[start:stop],
                key_columns=[values[start:stop] for values in key_columns],
                new_keys=new_keys,
            )
        batch.attached = stop
        await asyncio.sleep(0)


def detach_attached(session: AsyncSession, batch: ColumnBatch) -> None:
    """Undo :func:`attach_alongside` (its ``COPY`` failed): the entities become transient."""
    sync = session.sync_session
    for instance in batch.instances[: batch.attached]:
        if instance_state(instance).session_id is not None:
            sync.expunge(instance)
        make_transient(instance)
    batch.attached = 0


@contextmanager
def collector_paused(rows: int) -> Generator[None]:
    """Keep Python's cyclic garbage collector out of the bookkeeping of a large batch.

    Attaching 100,000 entities allocates some 400,000 container objects (instance-state
    dicts, identity keys, weak references). With the collector running, every 700 of them
    start a young-generation collection and every tenth of those moves the fresh objects
    on, until a full collection of the whole heap runs; merely pausing it instead leaves
    one young collection that traverses all 400,000 at once (50-170 ms, as long as the
    rest of the bookkeeping). None of these objects is cyclic garbage (reference counting
    frees whatever dies) and they live as long as the session holds the entities, so they
    are handed straight to the oldest generation: ``gc.freeze()`` moves everything tracked
    so far to the permanent generation and ``gc.unfreeze()`` moves it into the oldest one,
    both O(1). Only when nothing else is frozen (an application that froze its start-up
    heap before forking keeps it frozen: then the collector is just re-enabled). Never
    spans an ``await``; leaves the collector alone if it was off.
    """
    if rows < GC_PAUSE_ROWS or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        gc.enable()


def attach_persistent(
    session: AsyncSession,
    mapper: Mapper[Any],
    instances: list[Any],
    *,
    states: list[InstanceState[Any]] | None = None,
    key_columns: list[list[Any]] | None = None,
    new_keys: bool = False,
) -> None:
    """Make freshly inserted ``instances`` persistent in ``session``, as a flush does.

    Their current values become the committed state (later changes are tracked as
    updates), they enter the identity map, and a rollback turns them transient again.
    These are the steps of ``Session._register_persistent`` and
    ``InstanceState._commit_all_states`` (private, as is everything that attaches an
    object without a flush: the public ``make_transient_to_detached`` + ``Session.add``
    costs about 20 us per object). The per-object checks a flush needs are done once for
    the whole batch (all objects were transient; none of their keys is in the map yet,
    which ``new_keys=True`` says the caller checked already),
    and each step runs over all states at C speed. ``states`` and ``key_columns`` (the
    primary key values, one list per key column) save reading them again.

    On a SQLAlchemy version this was not verified against (:data:`FAST_ATTACH`), the
    public :func:`attach_public` does it instead.
    """
    sync = session.sync_session
    identity_class: Any = getattr(mapper, "_identity_class", None)
    if not FAST_ATTACH or identity_class is None:
        attach_public(sync, instances)
        return
    identity_map: Any = sync.identity_map
    if states is None:
        states = list(map(instance_state, instances))
    if key_columns is None:
        dicts: list[dict[str, Any]] = list(map(_dict_of, instances))
        pk_keys = [mapper.get_property_by_column(col).key for col in mapper.primary_key]
        key_columns = [list(map(_getitem, dicts, repeat(key))) for key in pk_keys]
    idents: Iterator[tuple[Any, ...]] = zip(*key_columns, strict=True)
    keys = list(zip(repeat(identity_class), idents, repeat(None)))
    by_key: dict[Any, InstanceState[Any]] = identity_map._dict
    if by_key and not new_keys and not by_key.keys().isdisjoint(keys):
        _attach_one_by_one(sync.hash_key, identity_map, states, keys)
    else:
        state_dicts: list[dict[str, Any]] = list(map(_dict_of, states))
        common = {
            "session_id": sync.hash_key,
            "_instance_dict": identity_map._wr,
            "modified": False,
            "expired": False,
            "_strong_obj": None,
        }
        _consume(map(_update, state_dicts, repeat(common)))
        _consume(map(_set, state_dicts, repeat("key"), keys))
        by_key.update(zip(keys, states, strict=True))
        # what InstanceState._commit_all_states does: current values become the loaded state
        _consume(map(_clear, map(_committed_of, states)))
        if any(map(contains, state_dicts, repeat("_pending_mutations"))):
            for state_dict in state_dicts:
                state_dict.pop("_pending_mutations", None)
        if any(map(_expired_of, states)):
            for state in states:
                state.expired_attributes.difference_update(state.dict)
        modified: set[InstanceState[Any]] = identity_map._modified
        if modified:
            modified.difference_update(states)
    track_rollback(sync, instances)


def _attach_one_by_one(
    hash_key: int, identity_map: Any, states: list[InstanceState[Any]], keys: list[Any]
) -> None:
    """:func:`attach_persistent` when some keys are in the identity map already."""
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


def attach_public(session: Session, instances: list[Any]) -> None:
    """:func:`attach_persistent` on public APIs only (about 20 us per entity).

    ``make_transient_to_detached`` + ``Session.add`` make each entity persistent with its
    current values as the loaded state; a rollback of the transaction (or savepoint) that
    was current makes them transient again, as it does to flushed entities.
    """
    for instance in instances:
        make_transient_to_detached(instance)
        session.add(instance)
    track_rollback(session, instances)


_ATTACHED = "viveka_db.bulk_attached"
"""``Session.info`` key: the attached batches and the transaction each belongs to."""


def track_rollback(session: Session, instances: list[Any]) -> None:
    """Make ``instances`` transient again if their transaction rolls back, as a flush's are.

    What ``SessionTransaction._new`` does for flushed entities, on public session events
    (installed once, for every session): ``after_rollback`` fires before the session
    expires what it holds; if the transaction the batch was attached in (or one it is
    nested in) is the one rolling back, the batch is expunged and made transient, its
    values kept. A released savepoint hands its batches to its parent; the end of the
    outermost transaction forgets them (closing without a rollback leaves them detached,
    as it leaves flushed entities).
    """
    transaction = session.get_nested_transaction() or session.get_transaction()
    if transaction is None or not instances:
        return
    _install_listeners()
    batches: list[list[Any]] = session.info.setdefault(_ATTACHED, [])
    batches.append([transaction, instances])


_listening = False


def _install_listeners() -> None:
    global _listening
    if not _listening:
        event.listen(Session, "after_rollback", _rolled_back)
        event.listen(Session, "after_transaction_end", _transaction_ended)
        _listening = True


def _rolled_back(session: Session) -> None:
    batches: list[list[Any]] | None = session.info.get(_ATTACHED)
    if not batches:
        return
    kept: list[list[Any]] = []
    for batch in batches:
        transaction: SessionTransaction = batch[0]
        if transaction.is_active:  # a savepoint inside it rolled back, not it
            kept.append(batch)
            continue
        for instance in batch[1]:
            if instance_state(instance).session_id is not None:
                session.expunge(instance)
            make_transient(instance)
    batches[:] = kept


def _transaction_ended(session: Session, transaction: SessionTransaction) -> None:
    batches: list[list[Any]] | None = session.info.get(_ATTACHED)
    if not batches:
        return
    parent = transaction.parent
    for batch in batches:
        if batch[0] is transaction:
            batch[0] = parent
    batches[:] = [batch for batch in batches if batch[0] is not None]
