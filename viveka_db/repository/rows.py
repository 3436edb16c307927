"""Entities and dicts to table rows and back, for the bulk paths that bypass the flush.

A :class:`BulkPlan` describes, once per entity class, what a row needs: the columns, the
Python-side defaults to apply (the unit of work is skipped, so nothing else applies them),
the generated primary key, and whether the entity is *plain* enough for a fast path (one
table, no inheritance, no SQL-side defaults, no insert events). :func:`attach_persistent`
then makes the inserted entities persistent in the session, as a flush would have.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Table
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstanceState, Mapper
from sqlalchemy.orm.attributes import instance_state

from viveka_db.errors import UnknownFieldError

__all__ = [
    "BulkPlan",
    "PreparedRows",
    "attach_persistent",
    "materialize",
    "plan_for",
    "prepare_rows",
]


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

    return first


def _build_plan(mapper: Mapper[Any]) -> BulkPlan:
    local: Any = mapper.local_table
    unfit: str | None = None
    if (
        not isinstance(local, Table)
        or mapper.inherits is not None
        or mapper.polymorphic_on is not None
    ):
        unfit = "inheritance or a non-table mapping"
    table: Any = mapper.local_table if unfit is None else mapper.persist_selectable
    columns: list[Column[Any]] = []
    keys: list[str] = []
    defaults: dict[str, Any] = {}
    server_side: set[str] = set()
    for column in table.columns:
        try:
            prop = mapper.get_property_by_column(column)
        except Exception:
            unfit = unfit or f"column {column.name} is not mapped"
            continue
        columns.append(column)
        keys.append(prop.key)
        default = column.default
        if default is not None:
            if getattr(default, "is_scalar", False) or getattr(default, "is_callable", False):
                defaults[prop.key] = getattr(default, "arg", None)
            else:
                server_side.add(prop.key)  # SQL expression or sequence
        if column.server_default is not None:
            server_side.add(prop.key)
    generated_pk: Column[Any] | None = None
    pk: list[Any] = [*mapper.primary_key]
    if len(pk) == 1 and pk[0] is getattr(table, "autoincrement_column", None):
        generated_pk = pk[0]
        server_side.discard(next(k for k, c in zip(keys, columns, strict=True) if c is pk[0]))
    version: Any = mapper.version_id_col
    if version is not None:
        vkey = mapper.get_property_by_column(version).key
        if vkey not in defaults:
            generator: Any = mapper.version_id_generator
            if generator is False:
                unfit = unfit or "server-side version counter"
            else:
                defaults[vkey] = _first_version(generator)
    dispatch = mapper.dispatch
    if dispatch.before_insert or dispatch.after_insert:
        unfit = unfit or "before_insert/after_insert listeners"
    return BulkPlan(
        mapper=mapper,
        table=table,
        columns=columns,
        keys=keys,
        defaults=defaults,
        generated_pk=generated_pk,
        server_side=server_side,
        relationships=tuple(mapper.relationships.keys()),
        unfit=unfit,
    )


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
    """
    mapper = plan.mapper
    model = mapper.class_
    keys = plan.keys
    keyset = set(keys)
    ctx = DefaultContext()
    pk_key = (
        mapper.get_property_by_column(plan.generated_pk).key
        if plan.generated_pk is not None
        else None
    )
    # Defaults split by cost: constants and once-per-statement values (timestamps) are
    # computed once; only per-row callables (uuid4) run for every row.
    constant: list[tuple[str, Any]] = []
    per_row: list[tuple[str, Any]] = []
    for key, default in plan.defaults.items():
        if not callable(default):
            constant.append((key, default))
        elif getattr(default, "viveka_per_statement", False):
            constant.append((key, default(ctx)))
        else:
            per_row.append((key, default))
    nulls = [
        k for k in keys if k not in plan.defaults and k not in plan.server_side and k != pk_key
    ]
    server_side = plan.server_side
    relationships = plan.relationships
    rows: list[dict[str, Any]] = []
    instances: list[Any] = []
    fast = plan.unfit is None
    missing_pk = 0
    for item in items:
        if type(item) is model:
            state: InstanceState[Any] = instance_state(item)
            if state.key is not None or state.session_id is not None:
                fast = False
            source = item.__dict__
            if relationships and fast and any(source.get(rel) for rel in relationships):
                fast = False
            row = {key: source[key] for key in keys if key in source}
            instance = item
        elif isinstance(item, Mapping):
            mapping = typing.cast("Mapping[str, Any]", item)
            if not keyset.issuperset(mapping):
                unknown = sorted(set(mapping) - keyset)
                raise UnknownFieldError(model, unknown[0], keys)
            row = dict(mapping)
            instance = None
        elif isinstance(item, model):  # a subclass: only the unit of work maps it right
            fast = False
            row = {key: item.__dict__[key] for key in keys if key in item.__dict__}
            instance = item
        else:
            raise TypeError(
                f"expected {model.__name__} instances or dicts of its fields, "
                f"got {type(item).__name__}"
            )
        for key, value in constant:
            if key not in row:
                row[key] = value
        if per_row:
            ctx.current_parameters = row
            for key, default in per_row:
                if key not in row:
                    row[key] = default(ctx)
        for key in nulls:
            if key not in row:
                row[key] = None
        if pk_key is not None and row.get(pk_key) is None:
            row.pop(pk_key, None)
            missing_pk += 1
        if server_side and not server_side.issubset(row):
            fast = False
        rows.append(row)
        instances.append(instance)
    return PreparedRows(rows, instances, missing_pk, fast)


def materialize(plan: BulkPlan, prepared: PreparedRows) -> list[Any]:
    """The entities of inserted rows: given ones get their generated values, mappings
    become entities built the way a query result builds them (no ``__init__``)."""
    manager = plan.mapper.class_manager
    out: list[Any] = []
    for row, instance in zip(prepared.rows, prepared.instances, strict=True):
        if instance is None:
            instance = manager.new_instance()
        instance.__dict__.update(row)
        out.append(instance)
    return out


def attach_persistent(session: AsyncSession, mapper: Mapper[Any], instances: list[Any]) -> None:
    """Make freshly inserted ``instances`` persistent in ``session``, as a flush does.

    Their current values become the committed state (later changes are tracked as
    updates), they enter the identity map, and a rollback turns them transient again.
    This uses the same (private) steps as ``Session._register_persistent``, without the
    per-object checks a flush needs, because it is the fast path's main cost.
    """
    sync = session.sync_session
    identity_map: Any = sync.identity_map
    transaction: Any = sync._transaction  # pyright: ignore[reportPrivateUsage]
    identity_class = mapper._identity_class  # pyright: ignore[reportPrivateUsage]
    pk_keys = [mapper.get_property_by_column(col).key for col in mapper.primary_key]
    hash_key = sync.hash_key
    states: list[InstanceState[Any]] = [instance_state(obj) for obj in instances]
    single = pk_keys[0] if len(pk_keys) == 1 else None
    add_unpresent = identity_map._add_unpresent
    modified = identity_map._modified
    for obj, state in zip(instances, states, strict=True):
        d = obj.__dict__
        ident = (d[single],) if single is not None else tuple(d[k] for k in pk_keys)
        key = (identity_class, ident, None)
        state.key = key
        state.session_id = hash_key
        if key in identity_map:
            identity_map.replace(state)
        else:
            add_unpresent(state, key)
        # what InstanceState._commit_all_states does: current values become the loaded state
        state.committed_state.clear()
        state.__dict__.pop("_pending_mutations", None)
        if state.expired_attributes:
            state.expired_attributes.difference_update(d)
        if state.modified:
            modified.discard(state)
        state.modified = state.expired = False
        state._strong_obj = None  # pyright: ignore[reportPrivateUsage]
    if transaction is not None:
        transaction._new.update(dict.fromkeys(states, True))
