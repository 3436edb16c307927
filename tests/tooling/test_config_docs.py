"""``config.ini.example`` and the configuration reference document every key there is."""

from __future__ import annotations

import re

import pytest
from pydantic import BaseModel

from tests.tooling.cli import ROOT
from viveka_db.config import CacheSettings, DatabaseSettings, load_settings

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
