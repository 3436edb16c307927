"""Test support for users of viveka_db: the pytest plugin and ``factory_for`` (test data).

``factory_for`` needs polyfactory (``pip install "viveka-db[testing]"``); it is imported on
first use, so the pytest plugin stays cheap where polyfactory is not installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from viveka_db.testing.factories import EntityFactory, factory_for

__all__ = ["EntityFactory", "factory_for"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from viveka_db.testing import factories

        return getattr(factories, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
