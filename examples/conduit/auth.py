"""Passwords (scrypt from the standard library) and ``Authorization: Token <jwt>`` (PyJWT)."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from datetime import UTC, datetime, timedelta

import jwt

SECRET = os.environ.get("CONDUIT_JWT_SECRET") or secrets.token_urlsafe(32)
TOKEN_LIFETIME = timedelta(days=7)


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"{salt.hex()}${digest.hex()}"


def password_matches(password: str, stored: str) -> bool:
    salt, _, _ = stored.partition("$")
    return hmac.compare_digest(hash_password(password, bytes.fromhex(salt)), stored)


def token_for(user_id: int) -> str:
    claims = {"sub": str(user_id), "exp": datetime.now(UTC) + TOKEN_LIFETIME}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def user_id_of(token: str) -> int | None:
    """The user id a valid token carries; ``None`` for a forged, expired or garbled one."""
    try:
        return int(jwt.decode(token, SECRET, algorithms=["HS256"])["sub"])
    except (jwt.InvalidTokenError, KeyError, ValueError):
        return None
