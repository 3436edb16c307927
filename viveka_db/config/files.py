"""Reading a configuration file: ini, YAML or TOML, chosen by the file's extension.

``.yaml``/``.yml`` and ``.toml`` files are read by pydantic-settings' file sources (YAML
needs PyYAML: ``pip install "viveka-db[yaml]"``); any other name is read as ini. Each
reader returns the file's sections as they are; :mod:`viveka_db.config.sources` checks the
section names and validates the values the same way for every format. Parse errors name
the file and the line, never the line's text (it may hold a password).
"""

from __future__ import annotations

import configparser
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from viveka_db.errors import ConfigurationError

if TYPE_CHECKING:
    from pydantic_settings import BaseSettings

__all__ = ["DEFAULT_FILES", "default_file", "read_file"]

DEFAULT_FILES = ("config.ini", "config.toml", "config.yaml", "config.yml")
"""Looked for in the working directory, in this order, when no file is named."""

YAML_SUFFIXES = frozenset({".yaml", ".yml"})
_NOT_SECTIONS = "config file {path!r} must hold sections such as database: and cache:"


def default_file() -> Path | None:
    """The first of :data:`DEFAULT_FILES` in the working directory, if any."""
    return next((Path(name) for name in DEFAULT_FILES if Path(name).is_file()), None)


def read_file(path: Path) -> dict[str, Any]:
    """The top-level entries of the configuration file at ``path`` (sections, mostly)."""
    if not path.is_file():
        raise ConfigurationError(f"config file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix in YAML_SUFFIXES:
        data = _read_yaml(path)
    elif suffix == ".toml":
        data = _read_toml(path)
    else:
        return _read_ini(path)
    if not isinstance(data, Mapping):
        raise ConfigurationError(_NOT_SECTIONS.format(path=str(path)))
    return {str(key): value for key, value in cast("Mapping[object, object]", data).items()}


def _read_ini(path: Path) -> dict[str, Any]:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error as exc:
        lines = sorted({str(number) for number, _ in getattr(exc, "errors", ())})
        if isinstance(exc, configparser.MissingSectionHeaderError):
            lines = [str(exc.lineno)]
        where = f" (line {', '.join(lines)})" if lines else ""
        raise ConfigurationError(
            f"config file {str(path)!r} is not valid ini{where}: {type(exc).__name__}; "
            "expected [section] headers followed by key = value lines"
        ) from None
    return {name: dict(parser.items(name)) for name in parser.sections()}


@functools.cache
def _layout() -> type[BaseSettings]:
    """The settings class pydantic-settings' file sources read for (any key is kept)."""
    from pydantic_settings import BaseSettings, SettingsConfigDict

    class FileLayout(BaseSettings):
        model_config = SettingsConfigDict(extra="allow")

    return FileLayout


def _read_yaml(path: Path) -> object:
    try:
        import yaml
    except ImportError:
        raise ConfigurationError(
            f"config file {str(path)!r} is YAML, which needs PyYAML: "
            'pip install "viveka-db[yaml]" (or use config.ini / config.toml)'
        ) from None
    from pydantic_settings import YamlConfigSettingsSource

    try:
        return YamlConfigSettingsSource(_layout(), yaml_file=path, yaml_file_encoding="utf-8")()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigurationError(
            f"config file {str(path)!r} is not valid YAML{where}: {problem}"
        ) from None
    except (TypeError, ValueError):  # a list or a scalar at the top: no sections to merge
        raise ConfigurationError(_NOT_SECTIONS.format(path=str(path))) from None


def _read_toml(path: Path) -> object:
    import tomllib

    from pydantic_settings import TomlConfigSettingsSource

    try:
        return TomlConfigSettingsSource(_layout(), toml_file=path)()
    except tomllib.TOMLDecodeError as exc:  # its message names the line, not its text
        raise ConfigurationError(f"config file {str(path)!r} is not valid TOML: {exc}") from None
