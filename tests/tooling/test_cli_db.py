"""``viveka-db db init`` / ``db health`` / ``version`` / ``demo`` as subprocesses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.tooling.cli import cli_env, run_cli
from viveka_db import __version__

MODELS = "tests.tooling.tool_models"
SECRET = "Sup3r-s3cret-pw"


def test_version(tmp_path: Path) -> None:
    result = run_cli("version", cwd=tmp_path, env=cli_env())
    assert f"viveka-db {__version__}" in result.stdout


def test_db_init_is_idempotent(backend_url: str, tmp_path: Path) -> None:
    first = run_cli("db", "init", "--models", MODELS, cwd=tmp_path, env=cli_env(backend_url))
    # the second run is configured by a config file instead of options and the environment
    config = tmp_path / "tool.ini"
    config.write_text(f"[database]\nurl = {backend_url}\nmodels = {MODELS}\n")
    second = run_cli("--config", str(config), "db", "init", cwd=tmp_path, env=cli_env())

    def listed(output: str, label: str) -> set[str]:
        line = next(x for x in output.splitlines() if x.startswith(f"{label}:"))
        return {name.strip() for name in line.split(":", 1)[1].split(",")} - {"(none)"}

    tables = {"tool_people", "tool_notes"}
    # the first run may find the tables if another test of this run created them already
    assert listed(first.stdout, "created") | listed(first.stdout, "already existed") == tables
    assert listed(second.stdout, "created") == set()
    assert listed(second.stdout, "already existed") == tables


def test_db_init_without_models_fails_with_a_reason(tmp_path: Path) -> None:
    result = run_cli(
        "db", "init", cwd=tmp_path, env=cli_env(f"sqlite+aiosqlite:///{tmp_path}/x.db"), check=False
    )
    assert result.returncode == 1
    assert "--models" in result.stderr
    assert "Traceback" not in result.stderr


def test_db_health_reports_version_and_latency(
    backend: str, backend_url: str, tmp_path: Path
) -> None:
    result = run_cli("db", "health", cwd=tmp_path, env=cli_env(backend_url))
    line = next(x for x in result.stdout.splitlines() if x.startswith("database:"))
    expected = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "mariadb": "MariaDB"}[backend]
    assert re.search(rf"database: ok  {expected} \d+\.\d+", line), line
    assert re.search(r"\d+\.\d ms$", line), line


def test_db_health_pings_redis_when_configured(redis_url: str, tmp_path: Path) -> None:
    env = cli_env(f"sqlite+aiosqlite:///{tmp_path}/h.db", VIVEKA_CACHE__URL=redis_url)
    result = run_cli("db", "health", cwd=tmp_path, env=env)
    assert re.search(r"cache: ok  Redis \d", result.stdout), result.stdout


@pytest.mark.parametrize(
    "backend",
    [pytest.param("postgresql", marks=pytest.mark.postgresql)],
    indirect=True,
)
@pytest.mark.parametrize("broken", ["port", "user"])
def test_db_health_fails_cleanly_without_leaking_the_password(
    backend_url: str, broken: str, tmp_path: Path
) -> None:
    url = make_url(backend_url).set(password=SECRET)
    url = url.set(port=1) if broken == "port" else url.set(username="tool_no_such_user")
    env = cli_env(url.render_as_string(hide_password=False))
    result = run_cli("db", "health", "--timeout", "5", cwd=tmp_path, env=env, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert SECRET not in output
    assert "Traceback" not in output
    failure = [x for x in result.stderr.splitlines() if x.startswith("database: FAILED")]
    assert len(failure) == 1, output
    assert "***" in failure[0]  # the URL is shown masked
    reason = {"port": "refused", "user": "tool_no_such_user"}
    assert reason[broken] in failure[0].lower() or reason[broken] in failure[0]


def test_password_from_env_field_is_scrubbed_from_errors(tmp_path: Path) -> None:
    env = cli_env(
        "postgresql+asyncpg://someone@127.0.0.1:1/nothing",
        VIVEKA_DATABASE__PASSWORD=SECRET,
    )
    result = run_cli("db", "health", "--timeout", "5", cwd=tmp_path, env=env, check=False)
    assert result.returncode == 1
    assert SECRET not in result.stdout + result.stderr


def test_demo_runs_on_the_embedded_default_and_leaves_no_files(tmp_path: Path) -> None:
    result = run_cli("demo", cwd=tmp_path, env=cli_env(), timeout=120)
    out = result.stdout
    assert "registered Ada (id=1) and Linus (id=2)" in out
    assert "orders before: 2, after: 2" in out
    assert "survived the rollback" in out
    assert "'order attempt: nothing'" in out
    assert "0 SQL statement(s), a cache hit" in out
    assert "'Ada Lovelace'" in out
    assert list(tmp_path.iterdir()) == []
