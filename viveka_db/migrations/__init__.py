"""Alembic migrations wired to viveka_db: config, entities' metadata and async engines.

``viveka-db db migrations init`` writes a migrations directory whose ``env.py`` is two
lines calling :func:`run_migrations`; everything else (which database, which models,
running an async engine, SQLite batch mode) lives here. :func:`run_sql` runs the SQL text
of a plain-SQL revision (``viveka-db db revision -m NAME --sql``).
"""

from viveka_db.migrations.env import run_migrations
from viveka_db.migrations.sql_revision import run_sql

__all__ = ["run_migrations", "run_sql"]
