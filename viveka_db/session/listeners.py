"""Start-up listeners: how layers above the session layer hear that a data source started.

The session layer sits below the cache, so :class:`DatabaseSessionFactory` cannot import
the cache to install the ``[cache]`` backend; instead the cache registers a listener here
(in :mod:`viveka_db.cache.setup`) and the factory calls every listener once per new
data source. The same hook serves any later layer that configures itself from settings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

from viveka_db.config.settings import VivekaSettings

__all__ = ["StartListener", "notify_started", "on_data_source_started"]

StartListener: TypeAlias = Callable[[str, VivekaSettings], None]
"""Called with the data source name and its settings, after its engines exist."""

_listeners: list[StartListener] = []


def on_data_source_started(listener: StartListener) -> StartListener:
    """Register ``listener`` (once; usable as a decorator) and return it."""
    if listener not in _listeners:
        _listeners.append(listener)
    return listener


def notify_started(data_source: str, settings: VivekaSettings) -> None:
    """Call every listener, in registration order, for a data source that just started."""
    for listener in tuple(_listeners):
        listener(data_source, settings)
