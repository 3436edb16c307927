"""Turning database settings into a SQLAlchemy URL, and masking URLs for display.

Kept apart from the settings model so that every message that shows a URL goes through
:func:`mask_url` first (the one masking rule). Which driver belongs to which dialect is the
adapter registry's to say (:data:`viveka_db.dialects.registry.DRIVERS`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import unquote

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from viveka_db.dialects.registry import (
    DEFAULT_DRIVERS,
    DIALECT_ALIASES,
    async_drivers,
    blocking_drivers,
)
from viveka_db.errors import ConfigurationError

if TYPE_CHECKING:
    from viveka_db.config.settings import DatabaseSettings

__all__ = ["DEFAULT_SQLITE_URL", "build_url", "mask_url", "mask_urls_in", "url_secrets"]

DEFAULT_SQLITE_URL = "sqlite+aiosqlite:///./viveka.db"

DRIVER_DIALECTS = async_drivers()
SYNC_DRIVERS = blocking_drivers()


_SECRET_PARAMETER = re.compile(
    r"([?&;][^=&;#]*(?:password|passwd|pwd|secret|token|credential)[^=&;#]*=)([^&;#]*)",
    re.IGNORECASE,
)
"""A query parameter that carries a secret: ``?password=``, ``passwd``/``pwd`` (MySQL
drivers), ``sentinel_password``, ``sslpassword``, ``ssl_keyfile_password``, tokens..."""


def _authority_split(text: str) -> tuple[str, str, str, str] | None:
    """``(scheme://, user info, @hosts/path, ?query)`` of ``text``, ``None`` without user info."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        return None
    query = rest.find("?")
    head, tail = (rest, "") if query < 0 else (rest[:query], rest[query:])
    userinfo, at, hosts = head.rpartition("@")  # the last @ before the query
    if not at:
        return None
    return scheme + sep, userinfo, at + hosts, tail


def url_secrets(url: str) -> set[str]:
    """The secret values ``url`` carries, the ones :func:`mask_url` hides (as written and
    percent-decoded), for scrubbing them from text that did not come from a URL (a driver's
    error message)."""
    found: list[str] = []
    parts = _authority_split(url)
    if parts is not None and ":" in parts[1]:
        found.append(parts[1].partition(":")[2])
    found.extend(match.group(2) for match in _SECRET_PARAMETER.finditer(url))
    return {value for secret in found if secret for value in (secret, unquote(secret))}


def mask_url(url: str | URL) -> str:
    """``url`` rendered with every secret replaced by ``***``: the password of its user info
    and every query parameter that carries one (``?password=``, ``?passwd=``,
    ``?sentinel_password=``, ...). The one masking rule for every URL the library prints
    (database and cache URLs, in logs, reprs, errors and health output).

    Textual, so it also masks what no URL parser accepts (a multi-host
    ``redis+cluster://:pw@h1:1,h2:2``, a non-numeric port), and it never raises.
    """
    text = url.render_as_string(hide_password=True) if isinstance(url, URL) else str(url)
    parts = _authority_split(text)
    if parts is not None and ":" in parts[1]:
        scheme, userinfo, hosts, tail = parts
        text = f"{scheme}{userinfo.partition(':')[0]}:***{hosts}{tail}"
    return _SECRET_PARAMETER.sub(r"\1***", text)


_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def mask_urls_in(text: str) -> str:
    """``text`` (an error message, say) with every URL in it masked by :func:`mask_url`."""
    return _URL_IN_TEXT.sub(lambda found: mask_url(found.group()), text)


def build_url(settings: DatabaseSettings) -> URL:
    """The async SQLAlchemy URL that ``settings`` describes.

    ``url`` gives the structure; ``user``/``password``/``host``/``port``/``database``
    override its parts (so secrets can come from the environment). Without a URL the
    dialect is inferred from ``driver`` (or the driver from ``dialect``); with neither,
    the embedded SQLite default is used.
    """
    if settings.url:
        try:
            url = make_url(settings.url)
        except (ArgumentError, ValueError):  # ValueError: e.g. a non-numeric port
            raise ConfigurationError(
                "[database] url could not be parsed; expected a URL like "
                "'postgresql+asyncpg://user:password@host:5432/dbname'"
            ) from None
    elif settings.driver or settings.dialect:
        dialect = settings.dialect or DRIVER_DIALECTS.get(settings.driver or "")
        if dialect is None:
            raise ConfigurationError(
                f"[database] driver {settings.driver!r} does not name a known async driver, "
                f"so the dialect cannot be inferred; set 'dialect' as well or use one of: "
                f"{', '.join(sorted(DRIVER_DIALECTS))}"
            )
        driver = settings.driver or DEFAULT_DRIVERS.get(dialect)
        if driver is None:
            raise ConfigurationError(
                f"[database] dialect {dialect!r} has no default async driver; "
                f"set 'driver' as well (supported dialects: {', '.join(sorted(DEFAULT_DRIVERS))})"
            )
        url = URL.create(f"{dialect}+{driver}")
    else:
        url = make_url(DEFAULT_SQLITE_URL)

    overrides: dict[str, object] = {}
    if settings.user is not None:
        overrides["username"] = settings.user
    if settings.password is not None:
        overrides["password"] = settings.password.get_secret_value()
    if settings.host is not None:
        overrides["host"] = settings.host
    if settings.port is not None:
        overrides["port"] = settings.port
    if settings.database is not None:
        overrides["database"] = settings.database
    if overrides:
        url = url.set(**overrides)  # type: ignore[arg-type]
    check_async_url(url)
    return url


def check_async_url(url: URL) -> None:
    """Reject URLs that name no driver, a blocking driver, or a dialect SQLAlchemy lacks."""
    shown = mask_url(url)
    backend = url.get_backend_name()
    if "+" not in url.drivername:
        canonical = DIALECT_ALIASES.get(backend, backend)
        suggestion = DEFAULT_DRIVERS.get(backend)
        hint = (
            f"use '{canonical}+{suggestion}://...'"
            if suggestion
            else f"name an async driver, e.g. one of: {', '.join(sorted(DRIVER_DIALECTS))}"
        )
        raise ConfigurationError(f"[database] url {shown!r} names no async driver; {hint}")
    driver = url.get_driver_name()
    if driver in SYNC_DRIVERS:
        raise ConfigurationError(
            f"[database] url {shown!r} uses the blocking driver {driver!r}, which cannot run "
            f"under asyncio; use '{DIALECT_ALIASES.get(backend, backend)}+{SYNC_DRIVERS[driver]}"
            "://...' instead"
        )
    try:
        url.get_dialect()
    except NoSuchModuleError:
        raise ConfigurationError(
            f"[database] url {shown!r}: SQLAlchemy knows no dialect {url.drivername!r}; "
            f"supported here: postgresql+asyncpg, mysql+aiomysql, mariadb+aiomysql, "
            f"mysql+asyncmy, sqlite+aiosqlite (or another installed async dialect)"
        ) from None
