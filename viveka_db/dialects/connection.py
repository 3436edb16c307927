"""Why a connection could not be made: server unreachable, login refused, database missing.

One classification for the start-up verification (which turns it into a
``ConfigurationError``), for the web integrations (which answer 503) and for new
connections under ``connect_wait``/``failover_urls`` (which wait for, or move past, an
unreachable server but never retry a refused login or a missing database). It reads error
codes (PostgreSQL's SQLSTATE, MySQL/MariaDB's error numbers) and exception classes, and
describes the problem in its own words: a driver's message is never repeated, so nothing
it might contain (a user name, a host, a value) reaches a client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from viveka_db.errors import VivekaDbError

__all__ = ["ConnectionProblem", "connection_problem", "driver_error_name"]

Kind = Literal["unreachable", "login_refused", "database_missing"]

_PG_CODES: dict[str, Kind] = {
    "28P01": "login_refused",  # invalid_password
    "28000": "login_refused",  # invalid_authorization_specification (e.g. no such role)
    "3D000": "database_missing",  # invalid_catalog_name
    "57P01": "unreachable",  # admin_shutdown (a restart ended the session)
    "57P02": "unreachable",  # crash_shutdown
    "57P03": "unreachable",  # cannot_connect_now (starting up, shutting down)
    "53300": "unreachable",  # too_many_connections
}
_MYSQL_CODES: dict[int, Kind] = {
    1044: "login_refused",  # access denied for user to database
    1045: "login_refused",  # access denied for user (using password: YES/NO)
    1698: "login_refused",  # access denied (auth plugin)
    1130: "login_refused",  # host is not allowed to connect
    1049: "database_missing",  # unknown database
    1040: "unreachable",  # too many connections
    2002: "unreachable",  # can't connect through socket
    2003: "unreachable",  # can't connect to server
    2005: "unreachable",  # unknown host
    2006: "unreachable",  # server has gone away
    2013: "unreachable",  # lost connection
    1053: "unreachable",  # server shutdown in progress
    1047: "unreachable",  # a Galera node not ready for queries (WSREP)
    1927: "unreachable",  # connection killed
}
_LOGIN_MARKERS = ("password authentication failed", "no pg_hba.conf entry")
_UNREACHABLE_MARKERS = (
    "connection refused",
    "connect call failed",
    "can't connect",
    "could not connect",
    "lost connection",
    "server has gone away",
    "connection was closed",
    "connection is closed",
    "connection reset",
    "cannot connect now",
    "the database system is",
    "server closed the connection",
    "unable to open database file",
)
_DESCRIPTIONS: dict[Kind, str] = {
    "unreachable": "the database server cannot be reached (nothing listens at that host "
    "and port, the host is unknown, or the server closed the connection)",
    "login_refused": "the server refused the login (wrong user name or password, or the "
    "user may not connect to this database)",
    "database_missing": "the database does not exist on the server",
}
_FIXES: dict[Kind, str] = {
    "unreachable": "check host and port in [database] url (or host/port), and that the "
    "server is running",
    "login_refused": "check the user and password of [database] url (or user/password)",
    "database_missing": "create the database, or fix the database name in [database] url "
    "(or database)",
}


@dataclass(frozen=True, slots=True)
class ConnectionProblem:
    """Why a connection failed, in words that are safe to log and show."""

    kind: Kind
    code: str
    """The database's code (``SQLSTATE 28P01``, ``errno 1045``) or the exception class."""

    @property
    def description(self) -> str:
        return f"{_DESCRIPTIONS[self.kind]} [{self.code}]"

    @property
    def fix(self) -> str:
        return _FIXES[self.kind]


def connection_problem(exc: BaseException) -> ConnectionProblem | None:
    """What ``exc`` (or an error it wraps) says about the connection, or ``None``.

    ``None`` for every error that is not about reaching the database: a bad statement,
    a constraint violation, a timeout of the library's own.
    """
    if isinstance(exc, VivekaDbError):
        return None
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        found = _classify(current)
        if found is not None:
            return found
        inner = getattr(current, "orig", None)
        current = inner if isinstance(inner, BaseException) else current.__cause__
    return None


def _classify(error: BaseException) -> ConnectionProblem | None:
    args = error.args
    if len(args) > 1 and isinstance(args[0], int) and args[0] in _MYSQL_CODES:
        return ConnectionProblem(_MYSQL_CODES[args[0]], f"errno {args[0]}")
    sqlstate = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    if isinstance(sqlstate, str):
        if sqlstate in _PG_CODES:
            return ConnectionProblem(_PG_CODES[sqlstate], f"SQLSTATE {sqlstate}")
        if sqlstate.startswith("08"):  # connection_exception
            return ConnectionProblem("unreachable", f"SQLSTATE {sqlstate}")
    if isinstance(error, OSError):  # refused, reset, unreachable, unknown host, timed out
        return ConnectionProblem("unreachable", type(error).__name__)
    text = str(error).lower()
    # psycopg reports a failed connection without a SQLSTATE: the server's FATAL line decides
    if 'database "' in text and "does not exist" in text:
        return ConnectionProblem("database_missing", type(error).__name__)
    if any(marker in text for marker in _LOGIN_MARKERS) or (
        'role "' in text and "does not exist" in text
    ):
        return ConnectionProblem("login_refused", type(error).__name__)
    if any(marker in text for marker in _UNREACHABLE_MARKERS):
        return ConnectionProblem("unreachable", type(error).__name__)
    return None


def driver_error_name(exc: BaseException) -> str:
    """The class name of the innermost cause (``ConnectionRefusedError``, not SQLAlchemy's
    wrapper): specific enough to act on, and free of what a driver's message may hold."""
    seen: set[int] = set()
    current: BaseException = exc
    while id(current) not in seen:
        seen.add(id(current))
        inner = getattr(current, "orig", None) or current.__cause__
        if not isinstance(inner, BaseException):
            break
        current = inner
    return type(current).__name__
