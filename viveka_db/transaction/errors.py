"""Where the boundary maps driver errors: one call, so every boundary maps the same way."""

from __future__ import annotations

__all__ = ["map_error"]


def map_error(exc: BaseException) -> BaseException:
    """The error a boundary raises for ``exc``: its mapped form, or ``exc`` itself.

    The mapped error chains ``exc`` (or the driver error) as its ``__cause__``.
    """
    return exc
