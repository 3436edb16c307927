#!/usr/bin/env bash
# The SQLite suite against the lowest versions pyproject.toml allows for every direct
# dependency (uv's `--resolution lowest-direct`), so the declared lower bounds stay true.
# Transitive dependencies resolve normally. Redis tests use the local Redis when it runs.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${LOWEST_VENV:-build/lowest-venv}
PYTHON=${PYTHON:-python3}

"$PYTHON" -m venv --clear "$VENV"
"$VENV/bin/python" -m pip install --quiet uv
"$VENV/bin/python" -m uv pip install --quiet --python "$VENV/bin/python" \
  --resolution lowest-direct -e ".[all,asyncmy,test]"
echo "lowest: direct dependencies as installed"
"$VENV/bin/python" -m uv pip list --python "$VENV/bin/python" 2>/dev/null | grep -iE \
  '^(sqlalchemy|aiosqlite|pydantic|orjson|asyncpg|psycopg|aiomysql|asyncmy|redis|starlette|fastapi|typer|rich|alembic|pytest|pytest-asyncio|httpx|uvicorn|fakeredis|asgi-lifespan) '
VIVEKA_TEST_BACKENDS=sqlite "$VENV/bin/python" -m pytest -q "$@"
# asyncpg internals back the COPY path from the lowest asyncpg up (viveka_db.compat):
# their agreement tests run on PostgreSQL here too (skipped without a server, failed in CI).
VIVEKA_TEST_BACKENDS=postgresql "$VENV/bin/python" -m pytest -q \
  tests/repository/test_pg_copy_codecs.py tests/repository/test_attach.py tests/repository/test_bulk.py
# psycopg 3 at its lowest: bulk inserts, error mapping, read-only work and the connect policy
VIVEKA_TEST_BACKENDS=postgresql \
VIVEKA_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:5432/postgres" \
  "$VENV/bin/python" -m pytest -q tests/repository/test_bulk.py tests/core/test_error_mapping.py \
  tests/core/test_read_only_requests.py tests/core/test_connect_policy.py
