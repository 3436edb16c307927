"""Where the boundary maps driver errors: one call, so every boundary maps the same way."""

from __future__ import annotations

from viveka_db.dialects.translate import translate_error

__all__ = ["map_error"]


def map_error(exc: BaseException) -> BaseException:
    """The error a boundary raises for ``exc``: its mapped form, or ``exc`` itself.

    The mapped error chains ``exc`` (or the driver error) as its ``__cause__``. Engines
    created by viveka_db already raise mapped errors (:mod:`viveka_db.dialects.translate`);
    this catches the rest (another engine, a raw driver call) and costs an ``isinstance``.
    """
    return translate_error(exc)
