"""Per-dialect behaviour behind one small adapter per database family.

``adapter_for(dialect)`` returns the adapter (PostgreSQL, MySQL/MariaDB, SQLite, or the
generic fallback); :func:`translate_error` maps a driver error to the
:mod:`viveka_db.errors` family (every engine viveka_db creates raises mapped errors by
itself).
"""

from viveka_db.dialects.base import DialectAdapter
from viveka_db.dialects.registry import adapter_for
from viveka_db.dialects.translate import translate_error

__all__ = ["DialectAdapter", "adapter_for", "translate_error"]
