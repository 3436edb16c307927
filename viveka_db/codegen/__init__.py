"""Pydantic v2 schemas from entities: at runtime (:func:`schema_for`) and as source code."""

from viveka_db.codegen.runtime import SchemaKind, schema_for
from viveka_db.codegen.source import render_module

__all__ = ["SchemaKind", "render_module", "schema_for"]
