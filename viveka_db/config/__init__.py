"""Configuration: ini files, mappings, config services and the environment."""

from viveka_db.config.settings import CacheSettings, DatabaseSettings, VivekaSettings
from viveka_db.config.sources import ConfigSource, load_settings

__all__ = [
    "CacheSettings",
    "ConfigSource",
    "DatabaseSettings",
    "VivekaSettings",
    "load_settings",
]
