"""Reading model module names from command-line options."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["split_names"]


def split_names(values: Iterable[str]) -> list[str]:
    """``["a,b", "c"]`` -> ``["a", "b", "c"]`` (options may repeat or hold comma lists)."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]
