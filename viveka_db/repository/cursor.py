"""Opaque, signed keyset cursors.

A cursor carries the sort values of the last row of a slice and a fingerprint of the
entity and sort it was issued for, as base64 JSON with an HMAC-SHA256 signature. An
altered cursor, or one replayed against a different sort, is refused with
:class:`~viveka_db.errors.InvalidCursorError` before any SQL runs; the values are always
bound as parameters.

The signing key is ``$VIVEKA_CURSOR_SECRET``, or :func:`set_cursor_secret`, or else a
random key per process. Services with several processes behind one endpoint must set a
shared secret, or a cursor issued by one process is refused by the others.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import json
import os
import uuid
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from viveka_db.errors import InvalidCursorError

__all__ = ["decode_cursor", "encode_cursor", "set_cursor_secret", "sort_fingerprint"]

_key: bytes | None = None
_SIG_BYTES = 16


def set_cursor_secret(secret: str | bytes | None) -> None:
    """Sign cursors with ``secret`` (``None``: back to the environment or a random key)."""
    global _key
    _key = None if secret is None else _derive(secret)


def _derive(secret: str | bytes) -> bytes:
    raw = secret.encode() if isinstance(secret, str) else secret
    return hashlib.sha256(b"viveka_db cursor\0" + raw).digest()


def _signing_key() -> bytes:
    global _key
    if _key is None:
        env = os.environ.get("VIVEKA_CURSOR_SECRET")
        _key = _derive(env) if env else os.urandom(32)
    return _key


def sort_fingerprint(entity: str, keys: Sequence[tuple[str, bool]]) -> str:
    """A short digest of the entity and sort a cursor belongs to."""
    spec = entity + "|" + ",".join(f"{'-' if desc else '+'}{key}" for key, desc in keys)
    return hashlib.sha256(spec.encode()).hexdigest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_cursor(fingerprint: str, values: Sequence[Any]) -> str:
    payload = json.dumps(
        {"f": fingerprint, "v": [_encode_value(v) for v in values]}, separators=(",", ":")
    ).encode()
    signature = hmac.new(_signing_key(), payload, hashlib.sha256).digest()[:_SIG_BYTES]
    return f"{_b64(payload)}.{_b64(signature)}"


def decode_cursor(cursor: object, fingerprint: str, count: int) -> list[Any]:
    """The values ``cursor`` carries; :class:`InvalidCursorError` for anything unexpected."""
    if not isinstance(cursor, str) or cursor.count(".") != 1 or len(cursor) > 8192:
        raise InvalidCursorError(f"not a cursor issued by get_slice: {cursor!r:.80}")
    body, sig = cursor.split(".")
    try:
        payload, signature = _unb64(body), _unb64(sig)
    except (binascii.Error, ValueError) as exc:
        raise InvalidCursorError("malformed cursor (bad base64)") from exc
    expected = hmac.new(_signing_key(), payload, hashlib.sha256).digest()[:_SIG_BYTES]
    if not hmac.compare_digest(signature, expected):
        raise InvalidCursorError(
            "cursor signature does not match: it was altered, or signed by another process "
            "(set VIVEKA_CURSOR_SECRET to share one key between processes)"
        )
    try:
        data = json.loads(payload)
        values = [_decode_value(item) for item in data["v"]]
        issued_for = data["f"]
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise InvalidCursorError("malformed cursor payload") from exc
    if issued_for != fingerprint or len(values) != count:
        raise InvalidCursorError(
            "cursor was issued for a different entity or sort; pass the same sort= as for "
            "the slice that returned it"
        )
    return values


def _encode_value(value: Any) -> list[Any]:
    match value:
        case None:
            return ["n"]
        case bool():
            return ["b", value]
        case enum.Enum():
            return ["e", value.name]
        case int():
            return ["i", value]
        case float():
            return ["f", value]
        case str():
            return ["s", value]
        case datetime():
            return ["dt", value.isoformat()]
        case date():
            return ["d", value.isoformat()]
        case time():
            return ["t", value.isoformat()]
        case timedelta():
            return ["td", value.total_seconds()]
        case Decimal():
            return ["dec", str(value)]
        case uuid.UUID():
            return ["u", value.hex]
        case bytes():
            return ["by", _b64(value)]
        case _:
            raise TypeError(
                f"cannot keyset-paginate on a value of type {type(value).__name__}; "
                "sort by columns of scalar types"
            )


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


_DECODERS: dict[str, Any] = {
    "b": bool,
    "e": str,  # Enum columns accept the member name
    "i": int,
    "f": float,
    "s": str,
    "dt": datetime.fromisoformat,
    "d": date.fromisoformat,
    "t": time.fromisoformat,
    "td": _seconds,
    "dec": Decimal,
    "u": uuid.UUID,
    "by": _unb64,
}


def _decode_value(item: list[Any]) -> Any:
    tag = item[0]
    if tag == "n":
        return None
    return _DECODERS[tag](item[1])
