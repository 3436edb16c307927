"""Installing the cache backend described by the ``[cache]`` section (owned by the cache layer)."""

from __future__ import annotations

from viveka_db.config.settings import CacheSettings

__all__ = ["install_from_settings"]


def install_from_settings(settings: CacheSettings) -> None:
    """Install the backend ``settings`` describe as the process-wide cache."""
