"""Configuration: every source, environment overrides, interpolation, URL parts,
and errors that say what to fix without ever showing a password."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from configparser import ConfigParser
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from viveka_db import (
    ConfigurationError,
    DatabaseSessionFactory,
    VivekaSettings,
    load_settings,
)
from viveka_db.config import DatabaseSettings
from viveka_db.config.urls import build_url, mask_url

PASSWORD = "Xy7-Hunter2-NeverShowMe"


@pytest.fixture(autouse=True)
def no_ambient_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No VIVEKA_* variables or ./config.ini from the machine running the tests."""
    import os

    for name in list(os.environ):
        if name.startswith("VIVEKA_") and not name.startswith("VIVEKA_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
async def clean() -> AsyncIterator[None]:
    await DatabaseSessionFactory.close_all()
    yield
    await DatabaseSessionFactory.close_all()


def url_of(settings: VivekaSettings) -> str:
    return build_url(settings.database).render_as_string(hide_password=False)


# -- sources ----------------------------------------------------------------------------------


def test_ini_file(tmp_path: Path) -> None:
    path = tmp_path / "app.ini"
    path.write_text(
        "[database]\n"
        f"url = postgresql+asyncpg://app:{PASSWORD}@db.internal:5432/shop\n"
        "pool_size = 7\nmax_overflow = 3\necho = false\npool_pre_ping = true\n"
        "pool_recycle = 1800\nmodels = shop.models, shop.more\n"
        "[cache]\nurl = redis://cache:6379/0\nenabled = true\ndefault_ttl = 60\n"
    )
    for source in (path, str(path)):
        settings = load_settings(source, environ={})
        assert settings.database.pool_size == 7
        assert settings.database.max_overflow == 3
        assert settings.database.pool_pre_ping is True
        assert settings.database.pool_recycle == 1800
        assert settings.database.models == ["shop.models", "shop.more"]
        assert settings.cache.default_ttl == 60
        assert url_of(settings).endswith("@db.internal:5432/shop")


def test_default_config_ini_in_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "config.ini").write_text("[database]\nurl = sqlite+aiosqlite:///./here.db\n")
    assert load_settings(environ={}).database.url == "sqlite+aiosqlite:///./here.db"
    other = tmp_path / "other.ini"
    other.write_text("[database]\nurl = sqlite+aiosqlite:///./other.db\n")
    assert load_settings(environ={"VIVEKA_CONFIG": str(other)}).database.url.endswith("other.db")


def test_no_configuration_means_embedded_sqlite() -> None:
    settings = load_settings(environ={})
    url = build_url(settings.database)
    assert url.drivername == "sqlite+aiosqlite"
    assert settings.cache.url is None


def test_mapping_and_configparser() -> None:
    settings = load_settings(
        {
            "database": {"url": "mysql+aiomysql://u@h/db", "pool_size": "4"},
            "cache": {"enabled": "no"},
        },
        environ={},
    )
    assert settings.database.pool_size == 4
    assert settings.cache.enabled is False
    parser = ConfigParser()
    parser.read_string("[database]\nurl = mysql+aiomysql://u@h/db\npool_size = 2\n")
    assert load_settings(parser, environ={}).database.pool_size == 2


def test_settings_object_is_used_as_given() -> None:
    settings = VivekaSettings(database=DatabaseSettings(url="sqlite+aiosqlite:///x.db", echo=True))
    assert load_settings(settings, environ={"VIVEKA_DATABASE__ECHO": "false"}) is settings


class SectionKeyConfigService:
    """Like ConfigParser-backed services: ``get(section, key)``, raising on a missing key."""

    def __init__(self, values: dict[str, dict[str, str]]) -> None:
        self.values = values

    def get(self, section: str, key: str) -> str:
        return self.values[section][key]


class DottedConfigService:
    """Like dict-backed services: ``get("section.key", default=None)``."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


def test_duck_typed_config_services() -> None:
    two_args = SectionKeyConfigService(
        {"database": {"url": "postgresql+asyncpg://u@h/a", "pool_size": "6"}, "cache": {}}
    )
    settings = load_settings(two_args, environ={})
    assert settings.database.url == "postgresql+asyncpg://u@h/a"
    assert settings.database.pool_size == 6

    dotted = DottedConfigService(
        {
            "database.url": "postgresql+asyncpg://u@h/b",
            "database.max_overflow": "2",
            "cache.default_ttl": "30",
        }
    )
    settings = load_settings(dotted, environ={})
    assert settings.database.url == "postgresql+asyncpg://u@h/b"
    assert settings.database.max_overflow == 2
    assert settings.database.pool_size is None  # a missing key is missing, not its own name
    assert settings.cache.default_ttl == 30


def test_not_a_config_source() -> None:
    with pytest.raises(ConfigurationError, match=r"not a config source.*get\(section, key\)"):
        load_settings(42, environ={})  # type: ignore[arg-type]


# -- environment and interpolation ----------------------------------------------------------


def test_environment_overrides_the_source() -> None:
    env = {
        "VIVEKA_DATABASE__URL": "postgresql+asyncpg://env@h/envdb",
        "VIVEKA_DATABASE__POOL_SIZE": "9",
        "VIVEKA_CACHE__ENABLED": "false",
        "VIVEKA_DATABASE_REPORTS__URL": "mysql+aiomysql://r@h/reports",
    }
    settings = load_settings({"database": {"url": "sqlite+aiosqlite:///file.db"}}, environ=env)
    assert settings.database.url == "postgresql+asyncpg://env@h/envdb"
    assert settings.database.pool_size == 9
    assert settings.cache.enabled is False
    reports = load_settings({}, data_source="reports", environ=env)
    assert reports.database.url == "mysql+aiomysql://r@h/reports"


async def test_environment_override_reaches_the_factory(
    clean: None, monkeypatch: pytest.MonkeyPatch, backend_url: str
) -> None:
    monkeypatch.setenv("VIVEKA_DATABASE__URL", backend_url)
    factory = DatabaseSessionFactory({"database": {"url": "sqlite+aiosqlite:///ignored.db"}})
    async with factory.engine.connect() as conn:
        assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
    assert factory.url.database == DatabaseSessionFactory.get_instance().url.database
    assert "ignored" not in str(factory.url)


def test_interpolation() -> None:
    env = {"DB_HOST": "db.example", "DB_PASS": PASSWORD}
    settings = load_settings(
        {"database": {"url": "postgresql+asyncpg://app:${DB_PASS}@${DB_HOST}:${DB_PORT:-6543}/x"}},
        environ=env,
    )
    url = build_url(settings.database)
    assert (url.host, url.port, url.password) == ("db.example", 6543, PASSWORD)


def test_missing_interpolation_variable_is_a_clear_error() -> None:
    with pytest.raises(ConfigurationError) as info:
        load_settings(
            {"database": {"url": "postgresql+asyncpg://u:${DB_PASSWORD}@h/x"}}, environ={}
        )
    message = str(info.value)
    assert "${DB_PASSWORD}" in message and "set DB_PASSWORD" in message
    assert "${DB_PASSWORD:-value}" in message


# -- URL parts ------------------------------------------------------------------------------


def test_user_and_password_override_the_url() -> None:
    settings = load_settings(
        {
            "database": {
                "url": "postgresql+asyncpg://placeholder:nope@h:5432/db",
                "user": "svc",
                "password": PASSWORD,
            }
        },
        environ={},
    )
    url = build_url(settings.database)
    assert (url.username, url.password) == ("svc", PASSWORD)
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings)
    assert PASSWORD not in mask_url(url)


async def test_user_override_connects(clean: None, backend: str, backend_url: str) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite has no users")
    real_user = "postgres" if backend == "postgresql" else "root"
    wrong = backend_url.replace(f"//{real_user}@", "//nobody@")
    assert "nobody" in wrong
    factory = DatabaseSessionFactory({"database": {"url": wrong, "user": real_user}})
    async with factory.engine.connect() as conn:
        assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1


def test_driver_only_configuration_infers_the_dialect() -> None:
    for driver, dialect in (
        ("asyncpg", "postgresql"),
        ("aiomysql", "mysql"),
        ("aiosqlite", "sqlite"),
    ):
        settings = load_settings(
            {"database": {"driver": driver, "host": "h", "user": "u", "db": "d"}}, environ={}
        )
        url = build_url(settings.database)
        assert url.drivername == f"{dialect}+{driver}"
    pg = build_url(
        load_settings({"database": {"dialect": "postgresql", "host": "h"}}, environ={}).database
    )
    assert pg.drivername == "postgresql+asyncpg"


async def test_driver_only_configuration_connects(
    clean: None, backend: str, backend_url: str
) -> None:
    from sqlalchemy.engine import make_url

    parsed = make_url(backend_url)
    section: dict[str, Any] = {"driver": parsed.get_driver_name(), "db": parsed.database}
    if backend != "sqlite":
        section.update(host=parsed.host, port=parsed.port, user=parsed.username)
    factory = DatabaseSessionFactory({"database": section})
    async with factory.engine.connect() as conn:
        assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1


# -- bad configuration ----------------------------------------------------------------------


BAD = [
    (
        {"url": f"postgresql://app:{PASSWORD}@h/db"},
        ["names no async driver", "postgresql+asyncpg://"],
    ),
    (
        {"url": f"mysql://app:{PASSWORD}@h/db"},
        ["names no async driver", "mysql+aiomysql://"],
    ),
    (  # Heroku-style URLs: the hint must name a scheme SQLAlchemy accepts, not postgres+asyncpg
        {"url": f"postgres://app:{PASSWORD}@h/db"},
        ["names no async driver", "'postgresql+asyncpg://"],
    ),
    (
        {"url": f"nosuchdb+fastdrv://app:{PASSWORD}@h/db"},
        ["knows no dialect", "postgresql+asyncpg"],
    ),
    (
        {"url": f"postgresql+psycopg2://app:{PASSWORD}@h/db"},
        ["blocking driver 'psycopg2'", "postgresql+asyncpg://"],
    ),
    ({"url": f"postgresql+asyncpg://app:{PASSWORD}@h/db", "pool_size": "0"}, ["pool_size", "'0'"]),
    (
        {"url": f"postgresql+asyncpg://app:{PASSWORD}@h/db", "pool_size": "ten"},
        ["pool_size", "'ten'"],
    ),
    ({"url": f"postgresql+asyncpg://app:{PASSWORD}@h/db", "max_overflow": "-1"}, ["max_overflow"]),
    (
        {"url": f"postgresql+asyncpg://app:{PASSWORD}@h/db", "pool_sise": "5"},
        ["unknown key 'pool_sise'", "pool_size"],
    ),
    ({"password": PASSWORD, "port": "99999", "host": "h", "driver": "asyncpg"}, ["port"]),
    ({"driver": "odbcthing", "password": PASSWORD}, ["driver 'odbcthing'", "dialect"]),
    ({"url": f"postgresql+asyncpg://app:{PASSWORD}@h:notaport/db"}, ["url"]),
    ({"url": "not a url at all", "password": PASSWORD}, ["url"]),
]


@pytest.mark.parametrize(("section", "fragments"), BAD, ids=[str(i) for i in range(len(BAD))])
async def test_bad_config_says_what_to_fix_and_hides_the_password(
    clean: None,
    section: dict[str, str],
    fragments: list[str],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    ini = tmp_path / "bad.ini"
    ini.write_text("[database]\n" + "".join(f"{k} = {v}\n" for k, v in section.items()))
    for source in ({"database": section}, ini):
        with caplog.at_level(logging.DEBUG), pytest.raises(ConfigurationError) as info:
            DatabaseSessionFactory(source)
        message = str(info.value)
        for fragment in fragments:
            assert fragment in message, message
        assert message.startswith("[database]")
        assert PASSWORD not in message
        assert PASSWORD not in repr(info.value)
        assert PASSWORD not in caplog.text
        assert not DatabaseSessionFactory.is_initialised()


async def test_secrets_never_show_in_reprs_or_logs(
    clean: None, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"postgresql+asyncpg://app:{PASSWORD}@127.0.0.1:5432/app"
    with caplog.at_level(logging.DEBUG):
        factory = DatabaseSessionFactory(
            {
                "database": {"url": url, "read_url": url, "echo": "true"},
                "cache": {"url": f"redis://:{PASSWORD}@cache:6379/0"},
            }
        )
    for shown in (
        repr(factory),
        str(factory),
        repr(factory.settings),
        str(factory.settings),
        repr(factory.settings.database),
        repr(factory.settings.cache),
        mask_url(factory.url),
        caplog.text,
    ):
        assert PASSWORD not in shown
    assert "***" in repr(factory)


async def test_embedded_default_without_any_configuration(clean: None, tmp_path: Path) -> None:
    from sqlalchemy import Column, Integer

    from viveka_db import DbRepo, VivekaDbBase, entity, table

    factory = DatabaseSessionFactory()
    assert factory.url.drivername == "sqlite+aiosqlite"
    assert factory.url.database == "./viveka.db"

    @entity
    @table("core_embedded")
    class CoreEmbedded(VivekaDbBase):
        id = Column(Integer, primary_key=True)

    assert await factory.create_all([CoreEmbedded]) == ["core_embedded"]
    await DbRepo(CoreEmbedded).insert_all([CoreEmbedded()])
    assert await DbRepo(CoreEmbedded).count() == 1
    assert (tmp_path / "viveka.db").is_file()  # a local file in the working directory
