"""Reliable side effects: the transactional outbox, its relay, and after-commit listeners.

``publish(event, key=...)`` stores an event in the ``viveka_outbox`` table in the current
transaction; an :class:`OutboxRelay` (or ``viveka-db outbox relay``) delivers the stored
events at least once, in order per key; ``@on_event(EventType)`` functions run in-process
after the publishing commit. See the how-to "Publish events reliably".
"""

from viveka_db.outbox.events import OutboxEvent
from viveka_db.outbox.listeners import on_event
from viveka_db.outbox.publish import Published, publish
from viveka_db.outbox.relay import OutboxRelay
from viveka_db.outbox.settings import RelayOptions

__all__ = [
    "OutboxEvent",
    "OutboxRelay",
    "Published",
    "RelayOptions",
    "on_event",
    "publish",
]
