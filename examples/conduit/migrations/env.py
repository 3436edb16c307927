"""Alembic environment, written by `viveka-db db migrations init`.

The database URL and the model modules come from viveka_db's configuration
(config.ini `[database] url` / `models`, or VIVEKA_DATABASE__URL / VIVEKA_DATABASE__MODELS).
Pass options through, e.g. run_migrations(models=["myapp.models"],
include_object=skip_legacy_tables, compare_server_default=True).
"""

from viveka_db.migrations import run_migrations

run_migrations(models=["examples.conduit.entities"])
