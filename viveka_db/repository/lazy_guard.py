"""``LazyLoadError`` instead of ``MissingGreenlet`` / ``DetachedInstanceError``.

An async session can only load a relationship where the code can await: touching an
unloaded ``article.author`` in a request handler fails deep inside SQLAlchemy with
``MissingGreenlet``, and after a standalone repository call (the session is closed) with
``DetachedInstanceError``. Neither says what to do. This module wraps the class-level lazy
loader of every relationship of viveka entities (and of any entity given to a repository)
so both surface as :class:`~viveka_db.LazyLoadError`, naming the entity, the attribute and
the ``load=`` that fixes it.

Only the failure is translated: a lazy load that *can* run still runs, so explicit async
access (``await article.awaitable_attrs.author`` inside a transaction) keeps working, and
a many-to-one found in the identity map costs no SQL. ``raiseload`` was not used because it
refuses that explicit access too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import LoaderCallableStatus, Mapper, PassiveFlag
from sqlalchemy.orm.exc import DetachedInstanceError
from sqlalchemy.util.concurrency import in_greenlet

from viveka_db.base.db_base import VivekaDbBase
from viveka_db.errors import LazyLoadError

__all__ = ["guard_lazy_loads", "watch_entity"]

_GUARDED = "_viveka_lazy_guard"
_DETACHED = "the entity is detached: its session ended with the call that loaded it"


def _guarded(loader: Callable[..., Any], entity: type, key: str) -> Callable[..., Any]:
    def load(state: Any, passive: PassiveFlag) -> Any:
        if passive & PassiveFlag.SQL_OK and state.key is not None and state.session is None:
            raise LazyLoadError(entity, key, _DETACHED)
        if passive & PassiveFlag.SQL_OK and not in_greenlet():
            # async code outside SQLAlchemy's greenlet: SQL would raise MissingGreenlet.
            # Try without SQL (a many-to-one may be in the identity map), else explain.
            found = _load(loader, state, passive & ~PassiveFlag.SQL_OK, entity, key)
            if found is LoaderCallableStatus.PASSIVE_NO_RESULT:
                raise LazyLoadError(
                    entity,
                    key,
                    "async code cannot load it implicitly; inside a transaction "
                    f"`await obj.awaitable_attrs.{key}` also works",
                )
            return found
        return _load(loader, state, passive, entity, key)

    setattr(load, _GUARDED, True)
    return load


def _load(
    loader: Callable[..., Any], state: Any, passive: PassiveFlag, entity: type, key: str
) -> Any:
    try:
        return loader(state, passive)
    except DetachedInstanceError as exc:
        raise LazyLoadError(entity, key, _DETACHED) from exc


def guard_lazy_loads(mapper: Mapper[Any]) -> None:
    """Translate lazy-load failures of ``mapper``'s relationships (idempotent)."""
    manager = mapper.class_manager
    for prop in mapper.relationships:
        attribute = manager.get(prop.key)
        impl: Any = getattr(attribute, "impl", None)
        loader = getattr(impl, "callable_", None)
        if loader is None or getattr(loader, _GUARDED, False):
            continue
        impl.callable_ = _guarded(loader, mapper.class_, prop.key)


@event.listens_for(VivekaDbBase, "mapper_configured", propagate=True)
def _on_configured(mapper: Mapper[Any], cls: type) -> None:
    guard_lazy_loads(mapper)


def watch_entity(mapper: Mapper[Any]) -> None:
    """Guard an entity given to a repository that does not derive from ``VivekaDbBase``."""
    if issubclass(mapper.class_, VivekaDbBase):
        return
    if mapper.configured:
        guard_lazy_loads(mapper)
    elif not event.contains(mapper, "mapper_configured", _on_configured):
        event.listen(mapper, "mapper_configured", _on_configured)
