"""Autogenerate hooks that make revisions run as generated.

* :func:`render_item`: a column type from outside SQLAlchemy (``UTCDateTime``, a project's
  own ``TypeDecorator``) is rendered by Alembic as ``module.Class(...)``; the module must
  then be imported by the revision, which Alembic leaves to the template. We add the import.
* :func:`skip_index_drops_of_dropped_tables`: autogenerate's downgrade drops a table's
  indexes before the table; MySQL/MariaDB refuse to drop the index of a foreign key
  column ("needed in a foreign key constraint"), and dropping the table drops its
  indexes anyway, so those index drops are left out.
* :func:`drop_enum_types`: dropping a table does not drop a PostgreSQL ``ENUM`` type its
  columns created, so ``downgrade base`` followed by ``upgrade`` fails with "type already
  exists". The downgrade of a revision that creates tables with named enums drops those
  types at its end (a no-op on databases without enum types).
"""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import renderers
from alembic.operations import ops
from sqlalchemy import Enum, MetaData
from sqlalchemy.types import TypeEngine

__all__ = [
    "DropEnumTypesOp",
    "drop_enum_types",
    "render_item",
    "skip_index_drops_of_dropped_tables",
]


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Import the module of a non-SQLAlchemy column type; leave the rendering to Alembic."""
    if type_ == "type" and isinstance(obj, TypeEngine):
        module = str(getattr(type(obj), "__module__", ""))  # pyright: ignore[reportUnknownArgumentType]
        if not module.startswith("sqlalchemy.") and module != "builtins":
            autogen_context.imports.add(f"import {module}")
    return False


class DropEnumTypesOp(ops.MigrateOperation):
    """Drop named enum types (``DROP TYPE`` on PostgreSQL; nothing elsewhere)."""

    def __init__(self, names: list[str]) -> None:
        self.names = names


@renderers.dispatch_for(DropEnumTypesOp)
def _render_drop_enum_types(autogen_context: Any, op: DropEnumTypesOp) -> str:
    return "\n".join(
        f"sa.Enum(name={name!r}).drop(op.get_bind(), checkfirst=True)" for name in op.names
    )


def _created_tables(operations: list[Any]) -> list[str]:
    names: list[str] = []
    for op in operations:
        if isinstance(op, ops.CreateTableOp):
            names.append(op.table_name)
        elif isinstance(op, ops.OpContainer):
            names.extend(_created_tables(op.ops))
    return names


def drop_enum_types(metadata: MetaData | None, script: Any) -> None:
    """Append a :class:`DropEnumTypesOp` to the downgrade of ``script`` where it needs one."""
    upgrade = getattr(script, "upgrade_ops", None)
    downgrade = getattr(script, "downgrade_ops", None)
    if metadata is None or upgrade is None or downgrade is None:
        return
    names: list[str] = []
    for table_name in _created_tables(upgrade.ops):
        table = metadata.tables.get(table_name)
        if table is None:
            continue
        for column in table.columns:
            kind = column.type
            if isinstance(kind, Enum) and kind.native_enum and kind.name and kind.name not in names:
                names.append(kind.name)
    if names:
        downgrade.ops.append(DropEnumTypesOp(names))


def _without_index_drops(operations: list[Any], tables: set[str]) -> list[Any]:
    kept: list[Any] = []
    for op in operations:
        if isinstance(op, ops.DropIndexOp) and op.table_name in tables:
            continue
        if isinstance(op, ops.ModifyTableOps):
            if op.table_name in tables:
                op.ops = _without_index_drops(op.ops, tables)
            if not op.ops:
                continue
        kept.append(op)
    return kept


def skip_index_drops_of_dropped_tables(script: Any) -> None:
    """Leave out a downgrade's index drops on tables that the same downgrade drops."""
    downgrade = getattr(script, "downgrade_ops", None)
    if downgrade is None:
        return
    dropped = {op.table_name for op in downgrade.ops if isinstance(op, ops.DropTableOp)}
    if dropped:
        downgrade.ops = _without_index_drops(downgrade.ops, dropped)
