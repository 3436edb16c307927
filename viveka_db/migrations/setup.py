"""Creating a migrations directory and the Alembic ``Config`` that points at it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from viveka_db.errors import ConfigurationError
from viveka_db.migrations.env import CONFIG_ATTRIBUTE, MODELS_ATTRIBUTE

if TYPE_CHECKING:
    from alembic.config import Config

    from viveka_db.config import VivekaSettings

__all__ = ["ENV_TEMPLATE", "alembic_config", "create_directory"]

ENV_TEMPLATE = '''"""Alembic environment, written by `viveka-db db migrations init`.

The database URL and the model modules come from viveka_db's configuration
(config.ini `[database] url` / `models`, or VIVEKA_DATABASE__URL / VIVEKA_DATABASE__MODELS).
Pass options through, e.g. run_migrations(models=["myapp.models"],
include_object=skip_legacy_tables, compare_server_default=True).
"""

from viveka_db.migrations import run_migrations

run_migrations()
'''

README_TEMPLATE = """Migrations of this project (Alembic, driven by `viveka-db`).

    viveka-db db revision -m "add users" --autogenerate   # from the entities
    viveka-db db revision -m "backfill"                   # empty: write op.execute("...") SQL
    viveka-db db revision -m "add index" --sql            # plain SQL text, run by run_sql
    viveka-db db upgrade                                  # to head
    viveka-db db downgrade -1
    viveka-db db current | status | history
"""


def create_directory(directory: Path) -> list[Path]:
    """Write ``env.py``, ``script.py.mako``, ``README`` and ``versions/`` into ``directory``."""
    if directory.exists() and any(directory.iterdir()):
        raise ConfigurationError(
            f"{directory} already exists and is not empty; choose another --directory"
        )
    template = Path(__file__).with_name("script.py.mako").read_text(encoding="utf-8")
    (directory / "versions").mkdir(parents=True, exist_ok=True)
    files = {
        directory / "env.py": ENV_TEMPLATE,
        directory / "script.py.mako": template,
        directory / "README": README_TEMPLATE,
    }
    for path, content in files.items():
        path.write_text(content, encoding="utf-8")
    return [*files, directory / "versions"]


def alembic_config(directory: Path, settings: VivekaSettings, models: list[str]) -> Config:
    """An Alembic ``Config`` for ``directory`` carrying ``settings`` and ``models``."""
    from alembic.config import Config

    if not (directory / "env.py").is_file():
        raise ConfigurationError(
            f"no migrations directory at {directory} (no env.py); create one with "
            "`viveka-db db migrations init` or pass --directory"
        )
    config = Config()
    config.set_main_option("script_location", str(directory).replace("%", "%%"))
    config.attributes[CONFIG_ATTRIBUTE] = settings
    config.attributes[MODELS_ATTRIBUTE] = models
    return config
