"""The shape of a derived query method's name, shared by the runtime and the mypy plugin.

Kept free of SQLAlchemy imports so :mod:`viveka_db.mypy` can load it cheaply.
"""

from __future__ import annotations

import re

__all__ = ["DERIVED_NAME", "DERIVED_PREFIXES"]

DERIVED_PREFIXES = (
    "find_by",
    "find_first_by",
    "find_top_<N>_by",
    "find_all_by",
    "count_by",
    "exists_by",
    "delete_by",
)
"""The subjects a derived query name starts with (``<N>``: a number, ``find_top_3_by``)."""

DERIVED_NAME = re.compile(
    r"^(?P<kind>find_by|find_first_by|find_all_by|find_top_(?P<top>\d+)_by|count_by|exists_by"
    r"|delete_by)_(?P<rest>.+)$"
)
"""``find_by_email``, ``count_by_status``, ...: the subject; the rest is parsed against the
entity's attributes when the repository class is created."""
