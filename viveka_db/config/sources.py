"""Where configuration comes from, in order of precedence.

1. an explicit :class:`VivekaSettings` object (used as given);
2. the environment: ``VIVEKA_<SECTION>__<KEY>`` (``VIVEKA_DATABASE__URL``; a named data
   source ``reports`` reads ``VIVEKA_DATABASE_REPORTS__URL``);
3. the given source: a mapping, a path to an ini, YAML or TOML file (chosen by extension),
   or any object with a ``get(section, key)`` / ``get("section.key")`` method such as the
   original ``ConfigService``; with no source, the file named by ``VIVEKA_CONFIG`` or the
   first of ``./config.ini``, ``./config.toml``, ``./config.yaml``, ``./config.yml``;
4. defaults (the embedded SQLite database and the in-process cache).

A file or mapping holds the sections ``database``, ``database.<name>`` (a named data
source; nested as ``database: {reports: {...}}`` in YAML/TOML/mappings) and ``cache``, and
may name the application (``name: my-app``, which is not used); any other section is an
error naming it. A key's other names (``dsn`` for ``url``, ``db`` for ``database``,
``debug`` for ``echo``) are accepted in every source. ``${VAR}`` and ``${VAR:-default}`` in
any string value (also in lists) are replaced from the environment.
"""

from __future__ import annotations

import configparser
import inspect
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, TypeAlias, cast, runtime_checkable

from viveka_db.config.files import default_file, read_file
from viveka_db.config.settings import (
    CacheSettings,
    DatabaseSettings,
    VivekaSettings,
    canonical_keys,
    key_aliases,
    validate_section,
)
from viveka_db.errors import ConfigurationError

__all__ = ["ConfigSource", "SupportsGet", "database_section", "load_settings"]

ENV_PREFIX = "VIVEKA_"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@runtime_checkable
class SupportsGet(Protocol):
    """Anything with a ``get`` method, such as a ``ConfigService``."""

    def get(self, *args: Any, **kwargs: Any) -> Any: ...


ConfigSource: TypeAlias = (
    "VivekaSettings | Mapping[str, Any] | str | os.PathLike[str] | SupportsGet | None"
)


def database_section(data_source: str) -> str:
    """The config section of a data source: ``database`` or ``database.<name>``."""
    return "database" if data_source == "default" else f"database.{data_source}"


def load_settings(
    source: ConfigSource = None,
    *,
    data_source: str = "default",
    environ: Mapping[str, str] | None = None,
) -> VivekaSettings:
    """Resolve the settings of ``data_source`` from ``source`` and the environment."""
    if isinstance(source, VivekaSettings):
        return source
    env = os.environ if environ is None else environ
    section = database_section(data_source)
    raw = _read_source(source, section, env)
    database = raw.get(section) or (raw.get("database", {}) if data_source != "default" else {})
    database = {
        **canonical_keys(DatabaseSettings, section, database),
        **canonical_keys(DatabaseSettings, section, _env_section(env, section)),
    }
    cache = {
        **canonical_keys(CacheSettings, "cache", raw.get("cache", {})),
        **canonical_keys(CacheSettings, "cache", _env_section(env, "cache")),
    }
    return VivekaSettings(
        database=validate_section(DatabaseSettings, section, _interpolate(database, section, env)),
        cache=validate_section(CacheSettings, "cache", _interpolate(cache, "cache", env)),
    )


def _read_source(
    source: ConfigSource, section: str, env: Mapping[str, str]
) -> dict[str, dict[str, Any]]:
    if source is None:
        named = env.get(f"{ENV_PREFIX}CONFIG")
        path = Path(named) if named else default_file()
        return {} if path is None else _read_path(path)
    if isinstance(source, str | os.PathLike):
        return _read_path(Path(source))
    if isinstance(source, configparser.RawConfigParser):  # the application's: other sections ok
        return {name: dict(source.items(name, raw=True)) for name in source.sections()}
    if isinstance(source, Mapping):
        return _read_mapping(cast("Mapping[str, Any]", source), "config mapping")
    if isinstance(source, SupportsGet):
        return _read_duck(source, section)
    raise ConfigurationError(
        f"config_service of type {type(source).__name__} is not a config source; pass a "
        "VivekaSettings, a mapping like {'database': {'url': ...}}, a path to an ini, YAML or "
        "TOML file, or an object with a get(section, key) method"
    )


def _read_path(path: Path) -> dict[str, dict[str, Any]]:
    return _read_mapping(read_file(path), f"config file {str(path)!r}")


SECTIONS = ("database", "database.<name>", "cache")
"""The sections a configuration file or mapping may hold."""
NAME_KEY = "name"
"""The one top-level key that is not a section: the application's name (not used)."""


def _section_name(name: str, origin: str) -> str:
    database, dot, source = name.partition(".")
    if name == "cache" or (database == "database" and (not dot or source)):
        return name
    raise ConfigurationError(
        f"{origin}: unknown section {name!r}; valid sections are: {', '.join(SECTIONS)} "
        f"(and a top-level {NAME_KEY!r})"
    )


def _read_mapping(source: Mapping[str, Any], origin: str) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = {}
    for name, values in source.items():
        if name == NAME_KEY and not isinstance(values, Mapping):
            continue
        if values is None:  # an empty YAML section
            values = {}
        if not isinstance(values, Mapping):
            raise ConfigurationError(
                f"{origin}: {str(name)!r} must be a section of keys, e.g. "
                "database: {url: 'sqlite+aiosqlite:///./app.db'}; valid sections are: "
                f"{', '.join(SECTIONS)}"
            )
        section = cast("Mapping[str, Any]", values)
        result[_section_name(str(name), origin)] = {
            k: v for k, v in section.items() if not isinstance(v, Mapping)
        }
        for sub, sub_values in section.items():  # {"database": {"reports": {...}}}
            if isinstance(sub_values, Mapping):
                sub_name = _section_name(f"{name}.{sub}", origin)
                result[sub_name] = dict(cast("Mapping[str, Any]", sub_values))
    return result


_MISSING = object()


_DEFAULT_NAMES = frozenset({"default", "default_value", "fallback", "dflt"})
_PAIR, _DOTTED = "pair", "dotted"


def _call_styles(source: SupportsGet) -> tuple[str, ...]:
    """How to ask ``source.get`` for a key: ``get(section, key)``, ``get("section.key")``.

    A ``get(key, default=None)`` service must only be asked the dotted way: asked
    ``get("database", "url")`` it would answer with the "default", ``"url"``.
    """
    try:
        params = list(inspect.signature(source.get).parameters.values())
    except (TypeError, ValueError):  # no introspectable signature: try both
        return (_PAIR, _DOTTED)
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params):
        return (_PAIR, _DOTTED)
    positional = [
        p
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    if len(positional) < 2 or positional[1].name.lower() in _DEFAULT_NAMES:
        return (_DOTTED,)
    return (_PAIR, _DOTTED)


def _duck_get(source: SupportsGet, styles: tuple[str, ...], section: str, key: str) -> Any:
    """Ask a ``get``-style config service for one key, tolerating the common signatures."""
    for style in styles:
        args = (section, key) if style == _PAIR else (f"{section}.{key}",)
        try:
            value = source.get(*args)
        except (KeyError, LookupError, TypeError, AttributeError, configparser.Error):
            continue
        if value is not None:
            return value
    return _MISSING


def _read_duck(source: SupportsGet, section: str) -> dict[str, dict[str, Any]]:
    styles = _call_styles(source)
    result: dict[str, dict[str, Any]] = {}
    for name, model in ((section, DatabaseSettings), ("cache", CacheSettings)):
        keys = set(model.model_fields) | set(key_aliases(model))
        found = {key: _duck_get(source, styles, name, key) for key in keys}
        result[name] = {k: v for k, v in found.items() if v is not _MISSING}
    return result


def _env_section(env: Mapping[str, str], section: str) -> dict[str, str]:
    prefix = ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", section).upper() + "__"
    return {
        name[len(prefix) :].lower(): value for name, value in env.items() if name.startswith(prefix)
    }


def _interpolate(values: Mapping[str, Any], section: str, env: Mapping[str, str]) -> dict[str, Any]:
    def replace(key: str, text: str) -> str:
        def one(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigurationError(
                f"[{section}] {key} refers to ${{{name}}}, which is not set in the environment; "
                f"set {name} or give a default as ${{{name}:-value}}"
            )

        return _VAR.sub(one, text)

    def value_of(key: str, value: Any) -> Any:
        if isinstance(value, str):
            return replace(key, value)
        if isinstance(value, list):
            return [value_of(key, item) for item in cast("list[object]", value)]
        return value

    return {k: value_of(k, v) for k, v in values.items()}
