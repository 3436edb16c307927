"""``config.ini.example`` and the configuration reference document every key there is."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from tests.tooling.cli import ROOT
from viveka_db.config import (
    CacheSettings,
    DatabaseSettings,
    VivekaSettings,
    load_settings,
)
from viveka_db.config.urls import build_url

SECTIONS: dict[str, type[BaseModel]] = {"database": DatabaseSettings, "cache": CacheSettings}


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_example_config_documents_every_key(section: str) -> None:
    text = (ROOT / "config.ini.example").read_text()
    body = text.split(f"[{section}]", 1)[1].split("\n[", 1)[0]
    for key in SECTIONS[section].model_fields:
        assert re.search(rf"^#? ?{key} =", body, re.MULTILINE), f"[{section}] {key} undocumented"


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_configuration_reference_documents_every_key(section: str) -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    table = text.split(f"## `[{section}]`", 1)[1].split("\n## ", 1)[0]
    for key in SECTIONS[section].model_fields:
        assert f"| `{key}`" in table, f"[{section}] {key} missing from docs/configuration.md"


def test_example_config_loads() -> None:
    settings = load_settings(ROOT / "config.ini.example", environ={})
    assert settings.database.models == ["myapp.entities"]
    assert settings.cache.url == "redis://localhost:6379/0"


def _config_blocks() -> dict[str, list[str]]:
    """The configuration page's ini, YAML and TOML blocks that start with ``# config.<ext>``."""
    from mktestdocs import grab_code_blocks  # pyright: ignore[reportMissingTypeStubs, reportUnknownVariableType]

    text = (ROOT / "docs" / "configuration.md").read_text()
    blocks: dict[str, list[str]] = {}
    for lang in ("ini", "yaml", "toml"):
        found: list[str] = grab_code_blocks(text, lang=lang)  # pyright: ignore[reportUnknownVariableType]
        blocks[lang] = [block for block in found if block.startswith(f"# config.{lang}")]
    return blocks


ENVIRON = {"DB_PASSWORD": "pw", "REDIS_PASSWORD": "rpw", "DB_USER": "prod_user"}


def test_configuration_page_formats_agree(tmp_path: Path) -> None:
    """The page's ini, YAML and TOML examples load, and give the same settings."""
    blocks = _config_blocks()
    loaded: dict[str, list[VivekaSettings]] = {}
    for lang in ("ini", "yaml", "toml"):
        path = tmp_path / f"config.{lang}"
        path.write_text(blocks[lang][0])
        loaded[lang] = [
            load_settings(path, data_source=source, environ=ENVIRON)
            for source in ("default", "reports")
        ]
    assert loaded["yaml"] == loaded["ini"] == loaded["toml"]
    default, reports = loaded["ini"]
    assert build_url(default.database).render_as_string(hide_password=False) == (
        "postgresql+asyncpg://app:pw@db.internal:5432/app"
    )
    assert reports.database.url == "postgresql+asyncpg://reporter@replica.internal:5432/app"
    assert default.cache.url == "rediss://:rpw@cache.internal:6380/0"


def test_configuration_page_persistkat_layout(tmp_path: Path) -> None:
    [_, layout] = _config_blocks()["yaml"]
    path = tmp_path / "config.yaml"
    path.write_text(layout)
    settings = load_settings(path, environ={"DB_USER": "prod_user", "DB_PASSWORD": "secret"})
    assert build_url(settings.database).render_as_string(hide_password=False) == (
        "postgresql+asyncpg://prod_user:secret@localhost:5432/mydb"
    )
    assert settings.database.models == ["your_app.models"]
