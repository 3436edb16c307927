"""The pytest plugin (entry point ``viveka_db`` in group ``pytest11``).

Loaded automatically wherever viveka-db and pytest are installed, so it stays cheap: it
registers options here and defines its fixtures (in :mod:`viveka_db.testing.fixtures`)
only when pytest-asyncio is installed; nothing of viveka_db is imported until a test
asks for one of them.

Fixtures:

* ``db_session``: an ``AsyncSession`` inside a transaction that is rolled back after the
  test; repository calls and ``@transactional`` code in the test join it, and every other
  transaction of the data source (requests through the app, ``REQUIRES_NEW``) is a
  savepoint inside it.
* ``viveka_db_factory``: the default data source, pointed at the test database.
* ``viveka_db_url``: the test database URL (``--viveka-db-url``,
  ``$VIVEKA_TEST_DATABASE_URL``, ini ``viveka_db_url``, else in-memory SQLite).
* ``memory_cache``: a fresh in-process ``MemoryCache`` installed as the cache for one test.
"""

from __future__ import annotations

from importlib.util import find_spec

import pytest

__all__ = ["pytest_addoption"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("viveka_db", "viveka_db test database")
    group.addoption(
        "--viveka-db-url",
        dest="viveka_db_url",
        default=None,
        help="database URL of the viveka_db fixtures (default: $VIVEKA_TEST_DATABASE_URL, "
        "ini viveka_db_url, or in-memory SQLite)",
    )
    parser.addini(
        "viveka_db_url", "database URL of the viveka_db fixtures (db_session, ...)", default=""
    )
    parser.addini(
        "viveka_db_create_tables",
        "create missing tables of imported entities before the first test (default true)",
        type="bool",
        default=True,
    )


if find_spec("pytest_asyncio") is not None:  # the fixtures need pytest-asyncio
    from viveka_db.testing import fixtures as _fixtures

    db_session = _fixtures.db_session
    memory_cache = _fixtures.memory_cache
    viveka_db_factory = _fixtures.viveka_db_factory
    viveka_db_url = _fixtures.viveka_db_url
