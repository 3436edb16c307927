"""PostgreSQL row-level security as the second wall (``[database] tenant_rls = true``)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.tenancy.models import Note, NoteRepo
from tests.tenancy.seed import seed
from tests.tooling.cli import cli_env, run_cli
from viveka_db import (
    ConfigurationError,
    DatabaseSessionFactory,
    all_tenants,
    current_session,
    tenant,
    transactional,
)
from viveka_db.tenancy.rls import policy_statements, tenant_tables

pytestmark = pytest.mark.postgresql

MODELS = "tests.tenancy.models"


def _tables() -> list[Any]:
    from tests.tenancy import models

    return tenant_tables(vars(models).values())


@pytest.fixture
async def app_role(backend_url: str) -> AsyncIterator[str]:
    """The URL of an ordinary application role (NOBYPASSRLS, not the tables' owner) on
    the test's private database, with the policies installed; both removed afterwards."""
    if not backend_url.startswith("postgresql"):
        pytest.skip("row-level security is PostgreSQL's")
    role = f"viveka_app_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(backend_url)
    tables = ", ".join(t.name for t in _tables())
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS"))
            await conn.execute(text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {tables} TO {role}"))
            await conn.execute(text(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}"))
            for statement in policy_statements(_tables()):
                await conn.execute(text(statement))
        yield (
            make_url(backend_url)
            .set(username=role, password=None)
            .render_as_string(hide_password=False)
        )
    finally:
        async with admin.begin() as conn:
            for table in _tables():
                await conn.execute(text(f"ALTER TABLE {table.name} NO FORCE ROW LEVEL SECURITY"))
                await conn.execute(text(f"ALTER TABLE {table.name} DISABLE ROW LEVEL SECURITY"))
                await conn.execute(
                    text(f"DROP POLICY IF EXISTS viveka_tenant_isolation ON {table.name}")
                )
            await conn.execute(text(f"DROP OWNED BY {role}"))
            await conn.execute(text(f"DROP ROLE {role}"))
        await admin.dispose()


async def _as_app(url: str) -> DatabaseSessionFactory:
    await DatabaseSessionFactory.close_all()
    return DatabaseSessionFactory({"database": {"url": url, "tenant_rls": True}})


async def _back_to_owner(url: str) -> None:
    await DatabaseSessionFactory.close_all()
    DatabaseSessionFactory({"database": {"url": url}})  # the db fixture empties the tables


@transactional
async def _setting() -> tuple[Any, Any]:
    row = (
        await current_session().execute(
            text(
                "SELECT current_setting('viveka.tenant_id', true), "
                "current_setting('viveka.all_tenants', true)"
            )
        )
    ).one()
    return row[0], row[1]


@transactional(read_only=True)
async def _raw_titles() -> list[str]:
    rows = await current_session().execute(text("SELECT title FROM ten_notes ORDER BY id"))
    return [r[0] for r in rows]


async def test_set_local_is_visible_inside_and_gone_after(
    db: DatabaseSessionFactory, app_role: str, backend_url: str
) -> None:
    factory = await _as_app(app_role)
    try:
        with tenant("a"):
            assert await _setting() == ("a", "off")
        with all_tenants():
            assert await _setting() == ("", "on")
        # the same pooled connection, outside any library transaction: nothing left
        async with factory.engine.connect() as conn:
            left = await conn.scalar(text("SELECT current_setting('viveka.tenant_id', true)"))
        assert left in (None, "")
    finally:
        await _back_to_owner(backend_url)


async def test_the_policies_hide_other_tenants_rows_even_from_raw_sql(
    db: DatabaseSessionFactory, app_role: str, backend_url: str
) -> None:
    await seed()  # as the owner
    factory = await _as_app(app_role)
    try:
        # raw SQL is not filtered by the ORM: the database's policies do it
        with tenant("a"):
            assert await _raw_titles() == ["same", "only-a"]  # read-only work included
            assert [n.tenant_id for n in await NoteRepo().all()] == ["a", "a"]
            await NoteRepo().save(Note(title="new-a"))
        with all_tenants():
            assert len(await _raw_titles()) == 5
        # the application role on a connection without the setting sees no rows at all
        async with factory.engine.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM ten_notes")) == 0
            assert (await conn.execute(text("SELECT * FROM ten_remarks"))).all() == []

        # and cannot write a row of another tenant, even with hand-written SQL
        @transactional
        async def insert_for_b() -> None:
            await current_session().execute(
                text("INSERT INTO ten_notes (title, tenant_id) VALUES ('x', 'b')")
            )

        with tenant("a"), pytest.raises(Exception, match="row-level security"):
            await insert_for_b()
    finally:
        await _back_to_owner(backend_url)


async def test_db_rls_prints_the_policies_and_check_fails_without_them(
    db: DatabaseSessionFactory, backend_url: str, tmp_path: Path
) -> None:
    if not backend_url.startswith("postgresql"):
        pytest.skip("row-level security is PostgreSQL's")
    printed = run_cli("db", "rls", "--models", MODELS, cwd=tmp_path, env=cli_env(backend_url))
    for table in _tables():
        assert f"ALTER TABLE {table.name} FORCE ROW LEVEL SECURITY;" in printed.stdout
        assert f"CREATE POLICY viveka_tenant_isolation ON {table.name}" in printed.stdout
    env = cli_env(backend_url)
    failed = run_cli("db", "rls", "--check", "--models", MODELS, cwd=tmp_path, env=env, check=False)
    assert failed.returncode == 1
    assert "ten_notes" in failed.stderr and "Traceback" not in failed.stderr
    async with db.engine.begin() as conn:
        for statement in policy_statements(_tables()):
            await conn.execute(text(statement))
    try:
        passed = run_cli("db", "rls", "--check", "--models", MODELS, cwd=tmp_path, env=env)
        assert "ok" in passed.stdout
    finally:
        async with db.engine.begin() as conn:
            for table in _tables():
                await conn.execute(text(f"ALTER TABLE {table.name} DISABLE ROW LEVEL SECURITY"))
                await conn.execute(text(f"ALTER TABLE {table.name} NO FORCE ROW LEVEL SECURITY"))
                await conn.execute(text(f"DROP POLICY viveka_tenant_isolation ON {table.name}"))


def test_tenant_rls_is_refused_where_there_is_no_row_level_security(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="tenant_rls = true needs PostgreSQL"):
        DatabaseSessionFactory(
            {"database": {"url": f"sqlite+aiosqlite:///{tmp_path}/x.db", "tenant_rls": True}},
            data_source="rls_on_sqlite",
        )
