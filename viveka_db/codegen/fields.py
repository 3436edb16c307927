"""What a schema field looks like for one mapped column, shared by runtime and source output.

One description per column (its Python type, whether it may be ``None``, whether the
database fills it in, its maximum length) so that :func:`~viveka_db.codegen.schema_for`
and the generated source code can never disagree.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import JSON, Column, Enum, Integer, String, inspect
from sqlalchemy.orm import Mapper

__all__ = ["FieldSpec", "SchemaKind", "allows_none", "entity_fields", "include_in", "is_required"]

SchemaKind = Literal["create", "update", "read"]
"""``create``: what a client sends to make one; ``update``: a partial change; ``read``: a row."""


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One column as a schema field."""

    name: str
    python_type: Any
    """The column's Python type, or ``Any`` when SQLAlchemy cannot tell."""
    nullable: bool
    generated: bool
    """The database or the ORM fills it in (autoincrement key, default, server default)."""
    managed: bool
    """Set by the system, never by a client: a callable default (timestamps, UUIDs), an
    ``onupdate`` or the mapper's version counter. Left out of create and update schemas."""
    primary_key: bool
    max_length: int | None


def _python_type(column: Column[Any]) -> Any:
    column_type = column.type
    if isinstance(column_type, Enum) and isinstance(column_type.enum_class, type):
        return column_type.enum_class
    if isinstance(column_type, JSON):  # any JSON value; SQLAlchemy 2.0 says dict, 2.1 object
        return Any
    try:
        python_type = column_type.python_type
    except NotImplementedError:
        return Any
    return Any if python_type is object else python_type  # JSON and other open types


def _is_generated(column: Column[Any]) -> bool:
    if column.default is not None or column.server_default is not None:
        return True
    if column.primary_key and column.autoincrement in (True, "auto"):
        table = column.table
        return isinstance(column.type, Integer) and table.autoincrement_column is column
    return False


def _is_managed(column: Column[Any], version_column: object) -> bool:
    default = column.default
    return (
        column is version_column
        or column.onupdate is not None
        or column.server_onupdate is not None
        or bool(default is not None and getattr(default, "is_callable", False))
    )


def entity_fields(entity: type[Any]) -> list[FieldSpec]:
    """The column fields of a mapped ``entity``, in mapper order (relationships are left out)."""
    mapper: object = inspect(entity, raiseerr=False)
    if not isinstance(mapper, Mapper):
        raise TypeError(
            f"{getattr(entity, '__name__', entity)!r} is not a mapped entity; schemas are made "
            "from classes decorated with @entity @table('name')"
        )
    fields: list[FieldSpec] = []
    version_column = mapper.version_id_col
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        if not isinstance(column, Column):
            continue  # column_property(...) expressions have no single column
        python_type = _python_type(column)
        length = getattr(column.type, "length", None) if isinstance(column.type, String) else None
        if isinstance(python_type, type) and issubclass(python_type, enum.Enum):
            length = None
        fields.append(
            FieldSpec(
                name=prop.key,
                python_type=python_type,
                nullable=bool(column.nullable),
                generated=_is_generated(column),
                managed=_is_managed(column, version_column),
                primary_key=bool(column.primary_key),
                max_length=length if isinstance(length, int) else None,
            )
        )
    return fields


def include_in(field: FieldSpec, kind: SchemaKind) -> bool:
    """Whether ``field`` belongs in a schema of ``kind``."""
    if kind == "read":
        return True
    if field.managed:
        return False
    if kind == "update":
        return not field.primary_key
    return not (field.primary_key and field.generated)


def is_required(field: FieldSpec, kind: SchemaKind) -> bool:
    """Whether a schema of ``kind`` requires ``field`` (no default)."""
    if kind == "update":
        return False
    if kind == "read":
        return not field.nullable
    return not (field.nullable or field.generated)


def allows_none(field: FieldSpec, kind: SchemaKind) -> bool:
    """Whether ``None`` is a valid value (``update`` uses ``None`` for "not given")."""
    return field.nullable or kind == "update" or (kind == "create" and field.generated)
