"""Process-wide CLI state: the ``--config`` source and the settings loaded from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from viveka_db.config import VivekaSettings, load_settings
from viveka_db.config.urls import url_secrets

__all__ = ["STATE", "CliState"]


@dataclass
class CliState:
    """What the root command's options set up for the sub-commands."""

    config: Path | None = None
    _settings: VivekaSettings | None = field(default=None, repr=False)
    _secrets: set[str] = field(default_factory=set[str], repr=False)

    def settings(self) -> VivekaSettings:
        """The settings from ``--config`` (or ``$VIVEKA_CONFIG`` / ``./config.ini``) and env."""
        if self._settings is None:
            self._settings = load_settings(self.config)
            self._remember_secrets(self._settings)
        return self._settings

    def _remember_secrets(self, settings: VivekaSettings) -> None:
        database = settings.database
        for secret in (database.password, database.read_your_writes_secret):
            if secret is not None:
                self._secrets.add(secret.get_secret_value())
        for url in (database.url, *database.replica_urls, settings.cache.url):
            if url:
                self._secrets.update(url_secrets(url))

    def secrets(self) -> set[str]:
        """Every secret the loaded configuration holds (to scrub from messages)."""
        return set(self._secrets)


STATE = CliState()
