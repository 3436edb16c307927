"""What an event becomes in the outbox: its ``type``, ``aggregatetype``, key and JSON payload.

The payload is plain JSON that any consumer can read, in any language: a dataclass becomes
an object of its fields, a Pydantic model its ``model_dump(mode="json")``, a mapping an
object. ``datetime``/``date``/``time`` are ISO 8601 strings, ``UUID`` and ``Decimal``
strings, an ``Enum`` its value, sets and tuples arrays. (The cache's own format tags types
so that Python gets them back exactly; the outbox is a contract with other services, so it
writes what their JSON parsers expect.) An ORM entity is refused: publish a record of what
happened, not the live row.

``type`` is the event class's ``__event_type__`` if it has one, else the class name;
``aggregatetype`` (Debezium routes a topic per value) is ``__aggregate_type__`` if present,
else the event type. Both can be given to :func:`~viveka_db.publish` instead, which a
mapping event needs for its type.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import orjson
from pydantic import BaseModel
from sqlalchemy import inspect

from viveka_db.outbox.table import KEY_LENGTH

__all__ = ["EventParts", "OutboxEvent", "event_parts", "key_text"]

Key = str | int | uuid.UUID


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """One stored event, as the relay hands it to ``deliver``.

    ``payload`` is the decoded JSON; ``headers`` hold the W3C trace context of the
    publishing span (``traceparent``, ``tracestate``) when tracing was on. ``attempt`` is 1
    for the first delivery and grows with each retry. A consumer that must not act twice
    deduplicates on ``id``: delivery is at least once.
    """

    id: uuid.UUID
    type: str
    aggregatetype: str
    aggregateid: str
    payload: Any
    headers: dict[str, str]
    created_at: datetime
    attempt: int

    @property
    def key(self) -> str:
        """The key events are ordered by (``aggregateid``)."""
        return self.aggregateid


@dataclass(frozen=True, slots=True)
class EventParts:
    type: str
    aggregatetype: str
    payload: Any


def _name(value: object, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > KEY_LENGTH:
        raise ValueError(f"{what} must be a non-empty string of at most {KEY_LENGTH} characters")
    return value


def event_parts(
    event: object, *, event_type: str | None = None, aggregate_type: str | None = None
) -> EventParts:
    """The columns describing ``event``; a clear ``TypeError`` for what cannot be published."""
    kind = type(event)
    if inspect(event, raiseerr=False) is not None:
        raise TypeError(
            f"cannot publish the entity {kind.__name__}: publish a dataclass, Pydantic model "
            "or dict describing what happened (its payload must not change after commit)"
        )
    if isinstance(event, Mapping):
        if event_type is None:
            raise TypeError(
                "a dict event needs its type: publish(event, event_type='OrderPlaced'), "
                "or publish a dataclass or Pydantic model (its class names the type)"
            )
        payload = _json(dict(event))  # pyright: ignore[reportUnknownArgumentType]
    elif isinstance(event, BaseModel):
        payload = event.model_dump(mode="json")
    elif dataclasses.is_dataclass(event) and not isinstance(event, type):
        payload = _json(event)
    else:
        raise TypeError(
            f"cannot publish a {kind.__name__}: an event is a dataclass, a Pydantic model "
            "or a dict (with event_type=...)"
        )
    name = _name(event_type or getattr(kind, "__event_type__", None) or kind.__name__, "event_type")
    aggregate = aggregate_type or getattr(kind, "__aggregate_type__", None) or name
    return EventParts(name, _name(aggregate, "aggregate_type"), payload)


def key_text(key: object, event_id: uuid.UUID) -> str:
    """``key`` as stored in ``aggregateid``; an event without a key is its own key."""
    if key is None:
        return str(event_id)
    if isinstance(key, bool) or not isinstance(key, str | int | uuid.UUID):
        raise TypeError(f"key must be a str, int or UUID, got {type(key).__name__}")
    text = str(key)
    if not text or len(text) > KEY_LENGTH:
        raise ValueError(f"key must be 1 to {KEY_LENGTH} characters long")
    return text


def _default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, set | frozenset):
        items: list[Any] = list(value)  # pyright: ignore[reportUnknownArgumentType]
        return sorted(items, key=repr)
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _json(value: Any) -> Any:
    try:
        return orjson.loads(orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS))
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise TypeError(f"event payload cannot be stored as JSON: {exc}") from None
