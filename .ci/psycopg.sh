#!/usr/bin/env bash
# The PostgreSQL suite again, on psycopg 3 instead of asyncpg (postgresql+psycopg://).
set -euo pipefail
cd "$(dirname "$0")/.."
VIVEKA_TEST_BACKENDS=postgresql \
VIVEKA_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:5432/postgres" \
  make test PYTEST_ARGS="-q --ignore=tests/topology"
