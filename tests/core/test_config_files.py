"""Configuration files in ini, YAML and TOML: one settings model, the same rules for each.

The extension picks the reader; every format gets the same section check, key names
(``dsn`` for ``url``), environment overrides, ``${VAR}`` interpolation and secret-free errors.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from viveka_db import ConfigurationError, DatabaseSessionFactory, load_settings
from viveka_db.config.urls import build_url

PASSWORD = "Xy7-Hunter2-NeverShowMe"

# The same configuration in each format (a named data source, lists, numbers, booleans)
SAME = {
    "ini": f"""
[database]
url = postgresql+asyncpg://app:{PASSWORD}@db.internal:5432/shop
pool_size = 7
pool_pre_ping = true
models = shop.models, shop.more
read_urls = ${{REPLICA}}

[database.reports]
dsn = mysql+aiomysql://rep@reports:3306/rep

[cache]
url = redis://cache:6379/0
default_ttl = 60
""",
    "yaml": f"""
name: shop
database:
  url: postgresql+asyncpg://app:{PASSWORD}@db.internal:5432/shop
  pool_size: 7
  pool_pre_ping: true
  models: [shop.models, shop.more]
  read_urls:
    - ${{REPLICA}}
  reports:
    dsn: mysql+aiomysql://rep@reports:3306/rep
cache:
  url: redis://cache:6379/0
  default_ttl: 60
""",
    "toml": f"""
name = "shop"

[database]
url = "postgresql+asyncpg://app:{PASSWORD}@db.internal:5432/shop"
pool_size = 7
pool_pre_ping = true
models = ["shop.models", "shop.more"]
read_urls = ["${{REPLICA}}"]

[database.reports]
dsn = "mysql+aiomysql://rep@reports:3306/rep"

[cache]
url = "redis://cache:6379/0"
default_ttl = 60
""",
}
FORMATS = sorted(SAME)
REPLICA = "postgresql+asyncpg://app@replica:5432/shop"


@pytest.fixture(autouse=True)
def no_ambient_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("VIVEKA_") and not name.startswith("VIVEKA_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
async def clean() -> AsyncIterator[None]:
    await DatabaseSessionFactory.close_all()
    yield
    await DatabaseSessionFactory.close_all()


def write(tmp_path: Path, fmt: str, content: str, stem: str = "app") -> Path:
    path = tmp_path / f"{stem}.{fmt}"
    path.write_text(content, encoding="utf-8")
    return path


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_gives_the_same_settings(fmt: str, tmp_path: Path) -> None:
    path = write(tmp_path, fmt, SAME[fmt])
    settings = load_settings(path, environ={"REPLICA": REPLICA})
    database = settings.database
    assert (
        build_url(database)
        .render_as_string(hide_password=False)
        .endswith(f"app:{PASSWORD}@db.internal:5432/shop")
    )
    assert (database.pool_size, database.pool_pre_ping) == (7, True)
    assert database.models == ["shop.models", "shop.more"]
    assert database.read_urls == [REPLICA]  # ${VAR} is replaced inside lists too
    assert (settings.cache.url, settings.cache.default_ttl) == ("redis://cache:6379/0", 60)
    reports = load_settings(path, data_source="reports", environ={"REPLICA": REPLICA})
    assert reports.database.url == "mysql+aiomysql://rep@reports:3306/rep"  # dsn is url


@pytest.mark.parametrize("fmt", FORMATS)
def test_environment_overrides_every_format(fmt: str, tmp_path: Path) -> None:
    path = write(tmp_path, fmt, SAME[fmt])
    environ = {
        "REPLICA": REPLICA,
        "VIVEKA_DATABASE__POOL_SIZE": "3",
        "VIVEKA_DATABASE__DSN": "sqlite+aiosqlite:///./env.db",  # dsn in env beats url in file
        "VIVEKA_CACHE__ENABLED": "false",
        "VIVEKA_DATABASE_REPORTS__URL": "sqlite+aiosqlite:///./reports.db",
    }
    settings = load_settings(path, environ=environ)
    assert settings.database.pool_size == 3
    assert settings.database.url == "sqlite+aiosqlite:///./env.db"
    assert settings.cache.enabled is False
    reports = load_settings(path, data_source="reports", environ=environ)
    assert reports.database.url == "sqlite+aiosqlite:///./reports.db"


SIBLING_DSN_WITH_OVERRIDES = """
name: my-app
database:
  dsn: postgresql+asyncpg://defaultuser:defaultpass@localhost:5432/mydb
  user: ${DB_USER}      # Overrides user from DSN
  password: ${DB_PASSWORD}  # Overrides password from DSN
"""


def test_dsn_with_user_and_password_overrides_as_persistkat_documents_it(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "yaml", SIBLING_DSN_WITH_OVERRIDES, stem="config")
    settings = load_settings(path, environ={"DB_USER": "prod_user", "DB_PASSWORD": PASSWORD})
    url = build_url(settings.database)
    assert url.render_as_string(hide_password=False) == (
        f"postgresql+asyncpg://prod_user:{PASSWORD}@localhost:5432/mydb"
    )
    assert PASSWORD not in repr(settings)
    # the same through the environment instead of ${VAR} (PERSISTKAT_ becomes VIVEKA_)
    plain = write(tmp_path, "yaml", "database:\n  dsn: postgresql+asyncpg://u:p@h:5432/mydb\n")
    environ = {"VIVEKA_DATABASE__USER": "prod_user", "VIVEKA_DATABASE__PASSWORD": PASSWORD}
    url = build_url(load_settings(plain, environ=environ).database)
    assert (url.username, url.password, url.database) == ("prod_user", PASSWORD, "mydb")


SIBLING_LAYOUTS = {
    "driver only": """
name: my-app
database:
  driver: asyncpg  # Auto-detects: dialect=postgresql
  db: myapp-dev
  host: localhost
  port: 5432
  user: postgres
  password: postgres
""",
    "individual fields": """
name: my-app
database:
  dialect: postgresql
  driver: asyncpg
  db: myapp-dev
  user: postgres
  password: postgres
  host: localhost
  port: 5432
  debug: false
""",
}


@pytest.mark.parametrize("layout", sorted(SIBLING_LAYOUTS))
def test_persistkat_layouts_load_as_written(layout: str, tmp_path: Path) -> None:
    path = write(tmp_path, "yaml", SIBLING_LAYOUTS[layout])
    settings = load_settings(path, environ={})
    url = build_url(settings.database)
    assert url.render_as_string(hide_password=False) == (
        "postgresql+asyncpg://postgres:postgres@localhost:5432/myapp-dev"
    )
    assert settings.database.echo is False
    debug = load_settings(path, environ={"VIVEKA_DATABASE__DEBUG": "true"})
    assert debug.database.echo is True  # debug is another name for echo


async def test_yaml_dsn_with_user_override_connects(
    clean: None, backend: str, backend_url: str, tmp_path: Path
) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite has no users")
    real_user = "postgres" if backend == "postgresql" else "root"
    wrong = make_url(backend_url).set(username="nobody").render_as_string(hide_password=False)
    path = write(tmp_path, "yaml", f"database:\n  dsn: {wrong}\n  user: ${{DB_USER}}\n")
    os.environ["DB_USER"] = real_user
    try:
        factory = DatabaseSessionFactory(path)
    finally:
        del os.environ["DB_USER"]
    async with factory.engine.connect() as conn:
        assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1


@pytest.mark.parametrize("fmt", ["yaml", "toml"])
def test_numbers_are_read_as_text_where_a_key_is_text(fmt: str, tmp_path: Path) -> None:
    """YAML and TOML type their values; a numeric password or database name still loads."""
    content = {
        "yaml": "database:\n  driver: asyncpg\n  password: 123456\n  db: 2024\n  port: 5432\n",
        "toml": '[database]\ndriver = "asyncpg"\npassword = 123456\ndb = 2024\nport = 5432\n',
    }[fmt]
    database = load_settings(write(tmp_path, fmt, content), environ={}).database
    assert database.password is not None and database.password.get_secret_value() == "123456"
    assert (database.database, database.port) == ("2024", 5432)


# -- mistakes ---------------------------------------------------------------------------------

URL = f"postgresql+asyncpg://app:{PASSWORD}@h/db"
UNKNOWN_SECTION = {
    "ini": f"[database]\nurl = {URL}\n[databse]\npool_size = 3\n",
    "yaml": f"database:\n  url: {URL}\ndatabse:\n  pool_size: 3\n",
    "toml": f'[database]\nurl = "{URL}"\n[databse]\npool_size = 3\n',
}


@pytest.mark.parametrize("fmt", FORMATS)
def test_unknown_section_names_itself_and_the_valid_ones(fmt: str, tmp_path: Path) -> None:
    path = write(tmp_path, fmt, UNKNOWN_SECTION[fmt])
    with pytest.raises(ConfigurationError) as info:
        load_settings(path, environ={})
    message = str(info.value)
    assert "unknown section 'databse'" in message and str(path.name) in message
    assert "database, database.<name>, cache" in message
    assert PASSWORD not in message


@pytest.mark.parametrize("fmt", FORMATS)
def test_unknown_key_names_itself_and_the_valid_ones(fmt: str, tmp_path: Path) -> None:
    content = SAME[fmt].replace("pool_size", "pool_sise")
    with pytest.raises(ConfigurationError) as info:
        load_settings(write(tmp_path, fmt, content), environ={"REPLICA": REPLICA})
    message = str(info.value)
    assert message.startswith("[database] unknown key 'pool_sise'; valid keys are: ")
    assert "pool_size" in message and "dsn for url" in message
    assert PASSWORD not in message


def test_a_section_inside_cache_or_a_second_top_level_value_is_refused(tmp_path: Path) -> None:
    nested = write(tmp_path, "yaml", "cache:\n  redis:\n    url: redis://h\n")
    with pytest.raises(ConfigurationError, match=r"unknown section 'cache\.redis'"):
        load_settings(nested, environ={})
    scalar = write(tmp_path, "toml", 'debug = true\n[database]\nurl = "sqlite+aiosqlite:///x"\n')
    with pytest.raises(ConfigurationError, match="'debug' must be a section"):
        load_settings(scalar, environ={})
    listed = write(tmp_path, "yaml", "- database\n- cache\n", stem="list")
    with pytest.raises(ConfigurationError, match="must hold sections"):
        load_settings(listed, environ={})


def test_the_same_key_under_two_names_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "yaml",
        f"database:\n  url: postgresql+asyncpg://a:{PASSWORD}@h/db\n"
        f"  dsn: postgresql+asyncpg://b:{PASSWORD}@h/db\n",
    )
    with pytest.raises(ConfigurationError) as info:
        load_settings(path, environ={})
    assert "'url' and 'dsn' are two names of one key" in str(info.value)
    assert PASSWORD not in str(info.value)


BROKEN = {
    "ini": f"url = postgresql+asyncpg://app:{PASSWORD}@h/db\n",  # no section header
    "yaml": f"database:\n  url: [postgresql+asyncpg://app:{PASSWORD}@h/db\n",
    "toml": f'[database]\nurl = "postgresql+asyncpg://app:{PASSWORD}@h/db\n',
}


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_broken_file_names_the_line_but_not_its_text(
    fmt: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, fmt, BROKEN[fmt])
    with caplog.at_level(logging.DEBUG), pytest.raises(ConfigurationError) as info:
        load_settings(path, environ={})
    message = str(info.value)
    assert f"{path}" in message and "line" in message and fmt.upper() in message.upper()
    assert PASSWORD not in message and PASSWORD not in caplog.text


def test_the_working_directory_default_may_be_any_format(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("database:\n  dsn: sqlite+aiosqlite:///./yaml.db\n")
    assert load_settings(environ={}).database.url == "sqlite+aiosqlite:///./yaml.db"
    (tmp_path / "config.toml").write_text('[database]\nurl = "sqlite+aiosqlite:///./toml.db"\n')
    assert load_settings(environ={}).database.url == "sqlite+aiosqlite:///./toml.db"
    (tmp_path / "config.ini").write_text("[database]\nurl = sqlite+aiosqlite:///./ini.db\n")
    assert load_settings(environ={}).database.url == "sqlite+aiosqlite:///./ini.db"
    named = {"VIVEKA_CONFIG": str(tmp_path / "config.yaml")}
    assert load_settings(environ=named).database.url == "sqlite+aiosqlite:///./yaml.db"


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml", environ={})


def test_yaml_without_pyyaml_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "yaml", None)  # as if PyYAML were not installed
    path = write(tmp_path, "yaml", "database:\n  dsn: sqlite+aiosqlite:///./x.db\n")
    with pytest.raises(ConfigurationError, match=r'pip install "viveka-db\[yaml\]"'):
        load_settings(path, environ={})
