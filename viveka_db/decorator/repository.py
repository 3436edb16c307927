"""``@repository``: flags a class as a repository for discovery (no other runtime effect)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

__all__ = ["get_registered_repositories", "repository"]

C = TypeVar("C", bound=type[Any])

_repository_registry: list[type[Any]] = []


@overload
def repository(cls: C, /) -> C: ...
@overload
def repository() -> Callable[[C], C]: ...
def repository(cls: Any = None, /) -> Any:
    """Mark ``cls`` as a repository (``@repository`` or ``@repository()``)."""

    def mark(target: C) -> C:
        if not isinstance(target, type):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError(f"@repository decorates classes, got {target!r}")
        target.__viveka_repository__ = True
        if target not in _repository_registry:
            _repository_registry.append(target)
        return target

    return mark if cls is None else mark(cls)


def get_registered_repositories() -> list[type[Any]]:
    """Every class marked with ``@repository``, in definition order."""
    return list(_repository_registry)
