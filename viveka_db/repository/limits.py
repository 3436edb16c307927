"""Checking paging arguments before any SQL is built.

Paging values often come straight from a query string; a negative offset or a huge page
must fail as a :class:`~viveka_db.PaginationError` (a 400 in the web integrations), never
reach the database as a 500.
"""

from __future__ import annotations

from viveka_db.errors import PaginationError

__all__ = ["MAX_OFFSET", "MAX_PAGE_SIZE", "check_int"]

MAX_PAGE_SIZE = 10_000
"""The default largest page/slice/``get_all`` size (``DbRepo.max_page_size`` overrides it)."""

MAX_OFFSET = 2**31 - 1
"""The largest ``skip``/``page`` accepted: what every database takes as an ``OFFSET``."""


def check_int(name: str, value: object, low: int, high: int) -> int:
    """``value`` if it is an ``int`` (not a ``bool``) from ``low`` to ``high``, else raise."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise PaginationError(f"{name} must be an int from {low} to {high}, got {value!r}")
    return value
