"""``schema_for(Entity, kind=...)``: a Pydantic v2 model of an entity, built at runtime."""

from __future__ import annotations

from typing import Annotated, Any, get_args

from pydantic import BaseModel, ConfigDict, Field, create_model

from viveka_db.codegen.fields import (
    SchemaKind,
    allows_none,
    entity_fields,
    include_in,
    is_required,
)

__all__ = ["SchemaKind", "schema_for"]

_KINDS = get_args(SchemaKind)
_cache: dict[tuple[type[Any], str], type[BaseModel]] = {}


def schema_for(entity: type[Any], kind: SchemaKind = "read") -> type[BaseModel]:
    """The Pydantic model ``{Entity}Create``, ``{Entity}Update`` or ``{Entity}Read``.

    * ``read``: every column; built ``from_attributes`` so ``Read.model_validate(user)`` works.
    * ``create``: every column but generated primary keys and system-managed columns
      (callable defaults such as timestamps, ``onupdate`` columns, the version counter);
      columns with a default and nullable columns are optional.
    * ``update``: the same columns minus the primary key, all optional
      (``model_dump(exclude_unset=True)`` gives the change set).

    String lengths become ``max_length`` constraints. Models are cached per entity and kind;
    ``viveka-db codegen schemas MODULE`` writes the same models as source code.
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {', '.join(map(repr, _KINDS))}, got {kind!r}")
    cached = _cache.get((entity, kind))
    if cached is not None:
        return cached
    definitions: dict[str, Any] = {}
    for spec in entity_fields(entity):
        if not include_in(spec, kind):
            continue
        annotation: Any = spec.python_type
        if spec.max_length is not None:
            annotation = Annotated[annotation, Field(max_length=spec.max_length)]
        if allows_none(spec, kind):
            annotation = annotation | None
        default: Any = ... if is_required(spec, kind) else None
        definitions[spec.name] = (annotation, default)
    config = ConfigDict(from_attributes=True) if kind == "read" else ConfigDict(extra="forbid")
    model: type[BaseModel] = create_model(
        f"{entity.__name__}{kind.capitalize()}",
        __config__=config,
        __module__=entity.__module__,
        **definitions,
    )
    _cache[(entity, kind)] = model
    return model
