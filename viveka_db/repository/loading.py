"""``load=``: which relationships a read brings back with the entities.

A load spec is a relationship attribute (``Article.author``), a dotted path string
(``"author.profile"``), a SQLAlchemy loader option (``selectinload(Article.tags)``), or a
list/tuple of them. Attributes and paths get the loader that suits them: ``selectinload``
for collections (one extra ``SELECT ... IN`` per level, no row multiplication, works with
``LIMIT`` and streaming) and ``joinedload`` for many-to-one / one-to-one (a ``LEFT OUTER
JOIN`` in the same statement). Pass a loader option to choose differently.

Specs are checked before any SQL: an unknown name raises :class:`UnknownFieldError`
listing the relationships that exist.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from typing import Any, TypeAlias

from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import (
    InstrumentedAttribute,
    Mapper,
    RelationshipProperty,
    joinedload,
    selectinload,
)
from sqlalchemy.orm.interfaces import ORMOption

from viveka_db.errors import UnknownFieldError

__all__ = ["LoadSpec", "load_options"]

LoadItem: TypeAlias = InstrumentedAttribute[Any] | str | ORMOption
LoadSpec: TypeAlias = LoadItem | Sequence[LoadItem] | None
"""What ``load=`` accepts (``None``: the repository's ``default_load``)."""


def _relationship(mapper: Mapper[Any], name: str, path: str) -> RelationshipProperty[Any]:
    prop = mapper.relationships.get(name)
    if prop is None:
        raise UnknownFieldError(
            mapper.class_,
            path,
            (rel.key for rel in mapper.relationships),
        )
    return prop


def _chain(option: Any, prop: RelationshipProperty[Any]) -> Any:
    """``option`` extended by ``prop`` with the loader that suits it (``option``: a Load)."""
    attribute: Any = getattr(prop.parent.class_, prop.key)
    if option is None:
        return selectinload(attribute) if prop.uselist else joinedload(attribute)
    return option.selectinload(attribute) if prop.uselist else option.joinedload(attribute)


def _path_option(mapper: Mapper[Any], path: str) -> ORMOption:
    option: Any = None
    current = mapper
    for name in path.split("."):
        prop = _relationship(current, name, path)
        option = _chain(option, prop)
        current = prop.mapper
    assert option is not None
    return typing.cast(ORMOption, option)


def _item_option(model: type[Any], mapper: Mapper[Any], item: object) -> ORMOption:
    asked: object = item  # for the error message (not narrowed below)
    if isinstance(item, ORMOption):
        return item
    if isinstance(item, str):
        if not item or any(not part for part in item.split(".")):
            raise UnknownFieldError(model, item, (rel.key for rel in mapper.relationships))
        return _path_option(mapper, item)
    if isinstance(item, InstrumentedAttribute):
        owner: Any = item.class_
        key: str = item.key
        if isinstance(owner, type) and issubclass(model, owner) and key in mapper.relationships:
            return _path_option(mapper, key)
        raise UnknownFieldError(model, asked, (rel.key for rel in mapper.relationships))
    raise TypeError(
        f"load= takes relationship attributes (e.g. {model.__name__}.<relationship>), dotted "
        f"path strings or SQLAlchemy loader options, got {type(item).__name__}"
    )


def load_options(model: type[Any], load: object) -> list[ORMOption]:
    """The loader options ``load`` asks for on ``model`` (checked, nothing run)."""
    if load is None or (isinstance(load, list | tuple) and not load):
        return []  # the common case, on every read: no work
    mapper = typing.cast("Mapper[Any]", sa_inspect(model))
    items: Sequence[object]
    items = typing.cast("Sequence[object]", load) if isinstance(load, list | tuple) else (load,)
    return [_item_option(model, mapper, item) for item in items]
