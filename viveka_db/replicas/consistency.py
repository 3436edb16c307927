"""Read-your-writes: after a write commits, read-only work avoids replicas that lag behind it.

A *floor* is the oldest state a read may see. It is kept per data source in a context
variable, so it belongs to the current task (and the tasks it starts later):

* When a transaction that wrote commits (a non-``SELECT`` statement ran on the primary),
  the floor becomes "a write at an unknown position": read-only work of the same task then
  runs on the primary. No extra round trip is spent on the commit path.
* Across requests, a signed token carries the floor: :func:`issue_token` makes one after a
  request that wrote (asking the primary for its position: one round trip), valid for
  ``read_your_writes_window`` seconds; :func:`enter_request` installs the floor a later
  request's token proves, so it reads from a replica that has provably replayed that
  position (checked by the replica probe), else from the primary. How a token travels
  (cookie and header) is the HTTP boundary's business:
  :mod:`viveka_db.middleware.read_your_writes`.

The token is ``1.<position or ->.<expiry ms>.<HMAC-SHA256>``, the signature covering the
data source's name too, so a token one data source issued is never accepted by another. A
token that is malformed, not ASCII, expired, unsigned, wrongly signed or issued for
another data source is ignored (the request reads like any other).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
import weakref
from collections.abc import Callable, Generator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import event

from viveka_db.replicas.positions import parse_position, primary_position_sql

if TYPE_CHECKING:
    from sqlalchemy.engine import URL
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

    from viveka_db.config.settings import VivekaSettings


class DatabaseSessionFactory(Protocol):
    """What read-your-writes needs of a data source (the session factory has it; this
    package sits below the session layer, so it names the shape, not the class)."""

    data_source: str
    settings: VivekaSettings
    url: URL
    engine: AsyncEngine
    replicas: Any


__all__ = [
    "ON_REPLICA_KEY",
    "ReadFloor",
    "current_floor",
    "enter_request",
    "issue_token",
    "primary_reads",
    "reads_on_replica",
    "token_window",
    "track_writes",
]

logger = logging.getLogger("viveka_db.replicas")

_WROTE = "viveka_wrote"


@dataclass(frozen=True, slots=True)
class ReadFloor:
    """Reads must see at least this: a replica qualifies only if it replayed ``position``."""

    position: int | None
    """``None``: a write whose position is unknown, so only the primary qualifies."""
    expires: float | None = None
    """Wall-clock end of a floor that came from a client token; ``None`` for the task's own."""

    def active(self, now: float) -> bool:
        return self.expires is None or now < self.expires


_PRIMARY_ONLY = ReadFloor(None)
ON_REPLICA_KEY = "viveka_on_replica"
"""``session.info`` key set on sessions bound to a replica engine."""

_floors: ContextVar[dict[str, ReadFloor] | None] = ContextVar("viveka_db_read_floors", default=None)
"""The current task's floor per data source (a fresh dict on every change: tasks started
earlier keep theirs)."""


def current_floor(data_source: str) -> ReadFloor | None:
    """The floor that read-only work of ``data_source`` must respect now, if any."""
    floors = _floors.get()
    if floors is None:
        return None
    floor = floors.get(data_source)
    if floor is None or not floor.active(time.time()):
        return None
    return floor


def _set_floor(data_source: str, floor: ReadFloor) -> None:
    _floors.set({**(_floors.get() or {}), data_source: floor})


def track_writes(
    engine: AsyncEngine, data_source: str, is_plain_select: Callable[[Any], bool]
) -> None:
    """Raise the floor of ``data_source`` whenever a transaction that wrote commits on ``engine``.

    Anything ``is_plain_select(execution_context)`` rejects counts as a write (textual SQL
    included), so a write is never missed; a spurious one only sends a few reads to the
    primary. (The session layer passes its own test in: this module sits below it.)
    """
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "before_cursor_execute")
    def _note(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        if not is_plain_select(context):
            conn.info[_WROTE] = True

    @event.listens_for(sync_engine, "commit")
    def _committing(conn: Any) -> None:
        # runs in the committing task's context, so the floor is that task's
        if conn.info.pop(_WROTE, False):
            _set_floor(data_source, _PRIMARY_ONLY)

    @event.listens_for(sync_engine, "rollback")
    def _rolled_back(conn: Any) -> None:
        conn.info.pop(_WROTE, None)


@contextmanager
def primary_reads(data_source: str) -> Generator[None, None, None]:
    """Inside the block, read-only work of ``data_source`` that opens a session reads the primary.

    Cache fills use it: a replica may lag behind a write whose eviction the cache has
    already seen, and caching its older value would keep it for the whole TTL.
    """
    floors = _floors.get()
    if floors is not None and floors.get(data_source) == _PRIMARY_ONLY:
        yield
        return
    mine = {**(floors or {}), data_source: _PRIMARY_ONLY}
    token = _floors.set(mine)
    try:
        yield
    finally:
        if _floors.get() is mine:  # else a write inside raised the floor: keep it
            _floors.reset(token)


def reads_on_replica(session: AsyncSession | None) -> bool:
    """Whether ``session`` (a read-only one) is bound to a replica's engine."""
    return session is not None and bool(session.info.get(ON_REPLICA_KEY))


# -- across requests -----------------------------------------------------------------------


_MAX_TOKEN = 256
"""Longer tokens are ignored unread (a real one is about 60 characters)."""


class _Signer:
    """HMAC tokens carrying a floor of one data source; the key comes from
    ``read_your_writes_secret``, and the data source's name is signed with the token."""

    def __init__(self, secret: str | None, data_source: str = "default") -> None:
        self._key = (secret or secrets.token_hex(32)).encode()
        self._scope = data_source.encode() + b"\0"

    def dumps(self, floor: ReadFloor) -> str:
        assert floor.expires is not None
        position = "-" if floor.position is None else str(floor.position)
        body = f"1.{position}.{int(floor.expires * 1000)}"
        return f"{body}.{self._sign(body.encode()).decode()}"

    def loads(self, token: str, now: float) -> ReadFloor | None:
        """The floor ``token`` carries, or ``None`` for anything but a valid, live token of
        this data source (client input: never raises)."""
        if len(token) > _MAX_TOKEN or not token.isascii():
            return None
        body, _, signature = token.rpartition(".")
        parts = body.split(".")
        if len(parts) != 3 or parts[0] != "1":
            return None
        if not hmac.compare_digest(signature.encode(), self._sign(body.encode())):
            return None
        try:
            position = None if parts[1] == "-" else int(parts[1])
            expires = int(parts[2]) / 1000
        except ValueError:
            return None
        return ReadFloor(position, expires) if now < expires else None

    def _sign(self, body: bytes) -> bytes:
        digest = hmac.new(self._key, self._scope + body, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:18])


_signers: weakref.WeakKeyDictionary[DatabaseSessionFactory, _Signer] = weakref.WeakKeyDictionary()


def _signer(factory: DatabaseSessionFactory) -> _Signer:
    signer = _signers.get(factory)
    if signer is None:
        secret = factory.settings.database.read_your_writes_secret
        key = secret.get_secret_value() if secret else None
        signer = _signers[factory] = _Signer(key, factory.data_source)
    return signer


async def _primary_position(factory: DatabaseSessionFactory) -> int | None:
    backend = factory.url.get_backend_name()
    sql = primary_position_sql(backend)
    if sql is None:
        return None
    try:
        async with factory.engine.connect() as conn:
            return parse_position(await conn.scalar(_text(sql)), backend)
    except Exception as exc:  # the reads of this client go to the primary instead
        logger.warning("could not read the primary's WAL position: %s", exc.__class__.__name__)
        return None


def _text(sql: str) -> Any:
    from sqlalchemy import text

    return text(sql)


def token_window(factory: DatabaseSessionFactory) -> float | None:
    """How long a token of ``factory`` stays valid, in seconds: ``0`` when tokens are off
    (``read_your_writes_window = 0``), ``None`` when the data source has no replicas (every
    read is on the primary: there is nothing to carry across requests)."""
    if factory.replicas is None:
        return None
    return factory.settings.database.read_your_writes_window


def enter_request(factory: DatabaseSessionFactory, token: str | None) -> Callable[[], None]:
    """Start a request of ``factory``'s data source from the floor ``token`` proves, if any.

    The request starts from what its client proves only (a floor this task had before is
    set aside); the returned ``done()`` restores the previous floors (call it in
    ``finally``), so a request's own writes never outlive it in the server's task.
    """
    data_source = factory.data_source
    signer = _signer(factory)
    start = dict(_floors.get() or {})
    start.pop(data_source, None)
    incoming = signer.loads(token, time.time()) if token else None
    if incoming is not None:
        start[data_source] = incoming
    reset = _floors.set(start)

    def done() -> None:
        _floors.reset(reset)

    return done


async def issue_token(factory: DatabaseSessionFactory, window: float) -> str | None:
    """A fresh token valid for ``window`` seconds if the current request wrote (its floor
    is its own, not one a client proved), else ``None``."""
    floor = (_floors.get() or {}).get(factory.data_source)
    if floor is None or floor.expires is not None:
        return None
    position = await _primary_position(factory)
    return _signer(factory).dumps(ReadFloor(position, time.time() + window))
