"""``@entity`` and ``@table``: registering and mapping entity classes after definition."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

from viveka_db.base.db_base import VivekaDbBase
from viveka_db.errors import EntityDefinitionError

__all__ = ["entity", "get_registered_entities", "table"]

E = TypeVar("E", bound=type[Any])

_entity_registry: dict[str, type[Any]] = {}
"""Registered entities by qualified name, in registration order."""


def _require_base(cls: object, decorator: str) -> type[VivekaDbBase]:
    described: object = cls  # not narrowed by the check below
    if not (isinstance(cls, type) and issubclass(cls, VivekaDbBase)):
        name = str(getattr(described, "__name__", None) or repr(described))
        raise EntityDefinitionError(
            f"{decorator} can only decorate subclasses of VivekaDbBase; {name} is not one "
            "(declare it as `class {0}(VivekaDbBase): ...`)".format(name)
        )
    return cls


def _is_mapped(cls: type) -> bool:
    return "__mapper__" in cls.__dict__


@overload
def entity(cls: E, /) -> E: ...
@overload
def entity(*, name: str | None = None) -> Callable[[E], E]: ...
def entity(cls: Any = None, /, *, name: str | None = None) -> Any:
    """Register an entity class (``@entity`` or ``@entity()``); returns the class unchanged."""

    def register(target: E) -> E:
        klass = _require_base(target, "@entity")
        key = name or f"{klass.__module__}.{klass.__qualname__}"
        _entity_registry[key] = klass
        return target

    return register if cls is None else register(cls)


def table(name: str) -> Callable[[E], E]:
    """Set ``__tablename__`` and map the class (``@entity @table("users") class User...``).

    Typed as returning the decorated class itself, so ``User`` stays ``type[User]`` for
    type checkers and repository results are ``User``, not ``Any``.
    """
    if not isinstance(name, str) or not name.strip():  # pyright: ignore[reportUnnecessaryIsInstance]
        raise EntityDefinitionError(f"@table needs a non-empty table name, got {name!r}")

    def apply(target: E) -> E:
        klass = _require_base(target, "@table")
        current = klass.__dict__.get("__tablename__")
        if _is_mapped(klass):
            if current == name:
                return target
            raise EntityDefinitionError(
                f"{klass.__name__} is already mapped to table {current!r}; "
                f"@table({name!r}) cannot rename it"
            )
        if current is not None and current != name:
            raise EntityDefinitionError(
                f"{klass.__name__} already has table name {current!r}; "
                f"@table({name!r}) conflicts with it"
            )
        existing = VivekaDbBase.metadata.tables.get(name)
        if existing is not None:
            owner = next(
                (
                    m.class_.__name__
                    for m in VivekaDbBase.registry.mappers
                    if m.local_table is existing
                ),
                "another entity",
            )
            raise EntityDefinitionError(
                f"table name {name!r} is already used by {owner}; "
                f"{klass.__name__} needs a different @table name"
            )
        klass.__tablename__ = name
        klass.__abstract__ = False
        VivekaDbBase.registry.map_declaratively(klass)
        return target

    return apply


def get_registered_entities() -> list[type[Any]]:
    """Every class registered with ``@entity``, in registration order."""
    return list(_entity_registry.values())
