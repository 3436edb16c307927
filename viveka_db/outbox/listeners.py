"""``@on_event(EventType)``: in-process listeners that run after the publishing commit.

Like Spring's ``@TransactionalEventListener`` (phase ``AFTER_COMMIT``): :func:`publish`
registers an after-commit hook of the transaction, so a listener runs once that transaction
has committed and never when it rolls back (a savepoint that rolls back discards its events
too). A listener receives the event object that was published, and also runs for events
of subclasses of its type. Listeners run in registration order; one that raises is logged
and the others still run. They run outside the committed transaction: database work in a
listener (a ``@transactional`` call) gets a transaction of its own.

In-process listeners are not durable: a crash between the commit and the listener loses
the call. Work that must happen uses the outbox relay.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["clear_listeners", "dispatch", "listeners_for", "on_event", "remove_listener"]

logger = logging.getLogger("viveka_db.outbox")

E = TypeVar("E")
Listener = Callable[[E], Awaitable[Any] | Any]
L = TypeVar("L", bound=Callable[..., Any])

_listeners: dict[type[Any], list[Callable[[Any], Any]]] = {}


def on_event(event_type: type[E]) -> Callable[[L], L]:
    """Register the decorated function (sync or async) for events of ``event_type``.

    ::

        @on_event(OrderPlaced)
        async def send_receipt(event: OrderPlaced) -> None: ...
    """
    if not isinstance(event_type, type):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise TypeError(f"on_event() takes an event class, got {event_type!r}")

    def register(listener: L) -> L:
        if not callable(listener):
            raise TypeError(f"@on_event({event_type.__name__}) decorates a function")
        _listeners.setdefault(event_type, []).append(listener)
        return listener

    return register


def listeners_for(event_type: type[Any]) -> list[Callable[[Any], Any]]:
    """Every listener of ``event_type`` and of its base classes, in registration order."""
    found: list[Callable[[Any], Any]] = []
    for cls in event_type.__mro__:
        found.extend(_listeners.get(cls, ()))
    return found


def remove_listener(event_type: type[Any], listener: Callable[..., Any]) -> None:
    """Unregister ``listener`` (a ``ValueError`` if it was not registered for ``event_type``)."""
    _listeners.get(event_type, []).remove(listener)


def clear_listeners() -> None:
    """Forget every listener (tests)."""
    _listeners.clear()


async def dispatch(event: object, listeners: list[Callable[[Any], Any]]) -> None:
    """Call each listener with ``event``; one that raises is logged, the others still run."""
    for listener in listeners:
        try:
            result = listener(event)
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception(
                "listener %s failed for event %s",
                getattr(listener, "__qualname__", repr(listener)),
                type(event).__name__,
            )
