"""Finding an application's entities: importing the modules named by ``[database] models``.

Used by the CLI (``db init``, ``codegen``) and by the Alembic environment of
:mod:`viveka_db.migrations`; it lives with the entity definitions so that neither of
those packages has to import the other.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from viveka_db.base.db_base import VivekaDbBase
from viveka_db.errors import ConfigurationError

__all__ = ["ensure_cwd_on_path", "entities_in", "import_models"]


def ensure_cwd_on_path() -> None:
    """Console scripts do not put the working directory on ``sys.path``; models live there."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)


def import_models(names: Sequence[str]) -> list[ModuleType]:
    """Import ``names`` (modules or packages; a package's submodules are imported too).

    A name that does not exist raises :class:`ConfigurationError` saying where it came from.
    """
    ensure_cwd_on_path()
    modules: list[ModuleType] = []
    for name in names:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                raise ConfigurationError(
                    f"cannot import models module {name!r}: no module named {exc.name!r} "
                    "(run from your project root, or check --models / [database] models)"
                ) from None
            raise
        modules.append(module)
        if hasattr(module, "__path__"):
            for info in pkgutil.walk_packages(module.__path__, prefix=f"{name}."):
                modules.append(importlib.import_module(info.name))
    return modules


def entities_in(module_names: Sequence[str]) -> list[type[Any]]:
    """Mapped entity classes defined in ``module_names`` (or their submodules)."""

    def belongs(cls: type[Any]) -> bool:
        return any(cls.__module__ == n or cls.__module__.startswith(f"{n}.") for n in module_names)

    found = [mapper.class_ for mapper in VivekaDbBase.registry.mappers if belongs(mapper.class_)]
    return sorted(found, key=lambda cls: (cls.__module__, cls.__name__))
