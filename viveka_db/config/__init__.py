"""Configuration: ini files, mappings, config services and the environment."""

from viveka_db.config.settings import CacheSettings, DatabaseSettings, VivekaSettings
from viveka_db.config.sources import ConfigSource, load_settings
from viveka_db.config.urls import build_url, mask_url

__all__ = [
    "CacheSettings",
    "ConfigSource",
    "DatabaseSettings",
    "VivekaSettings",
    "build_url",
    "load_settings",
    "mask_url",
]
