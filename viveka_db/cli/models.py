"""Importing the modules that define entities, and finding the entities they define."""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from collections.abc import Iterable, Sequence
from types import ModuleType
from typing import Any

from viveka_db.cli.errors import CliError

__all__ = ["entities_in", "import_models", "split_names"]


def split_names(values: Iterable[str]) -> list[str]:
    """``["a,b", "c"]`` -> ``["a", "b", "c"]`` (options may repeat or hold comma lists)."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _ensure_cwd_on_path() -> None:
    """Console scripts do not put the working directory on ``sys.path``; models live there."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)


def import_models(names: Sequence[str]) -> list[ModuleType]:
    """Import ``names`` (modules or packages; a package's submodules are imported too)."""
    _ensure_cwd_on_path()
    modules: list[ModuleType] = []
    for name in names:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                raise CliError(
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
    from viveka_db.base.db_base import VivekaDbBase

    def belongs(cls: type[Any]) -> bool:
        return any(cls.__module__ == n or cls.__module__.startswith(f"{n}.") for n in module_names)

    found = [mapper.class_ for mapper in VivekaDbBase.registry.mappers if belongs(mapper.class_)]
    return sorted(found, key=lambda cls: (cls.__module__, cls.__name__))
