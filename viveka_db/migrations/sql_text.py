"""Splitting a script of SQL statements at its semicolons, the way the database reads it.

The drivers run one statement per call (SQLite and asyncpg refuse several; MySQL needs a
connection flag), so a plain-SQL revision is split first. A semicolon inside a string
literal, a quoted identifier, a comment or a PostgreSQL dollar-quoted body (functions,
``DO`` blocks) does not end a statement. Backslash escapes are honoured where the database
has them: in every MySQL/MariaDB string, and in PostgreSQL ``E'...'`` strings only.
"""

from __future__ import annotations

import re

from viveka_db.dialects import adapter_for

__all__ = ["UnterminatedSqlError", "split_statements"]

_COMMENTS = r"(?P<line>--[^\n]*)|(?P<block>/\*.*?\*/)"
_QUOTED_STANDARD = r"""(?P<quoted>'(?:[^']|'')*'|"(?:[^"]|"")*"|`(?:[^`]|``)*`)"""
_QUOTED_BACKSLASH = r"""(?P<quoted>'(?:\\.|[^'\\]|'')*'|"(?:\\.|[^"\\]|"")*"|`(?:[^`]|``)*`)"""
_ESCAPE_STRING = r"(?P<escaped>(?<![\w$])[Ee]'(?:\\.|[^'\\]|'')*')"
_DOLLAR = r"(?P<dollar>(?<![\w$])\$(?P<tag>[A-Za-z_]\w*|)\$.*?\$(?P=tag)\$)"
_OPEN = r"""(?P<open>['"`]|/\*|(?<![\w$])\$(?:[A-Za-z_]\w*)?\$)"""


def _pattern(*parts: str) -> re.Pattern[str]:
    return re.compile("|".join((*parts, r"(?P<end>;)")), re.DOTALL)


_MYSQL = _pattern(_COMMENTS, _QUOTED_BACKSLASH, _OPEN)
_POSTGRESQL = _pattern(_COMMENTS, _ESCAPE_STRING, _DOLLAR, _QUOTED_STANDARD, _OPEN)
_STANDARD = _pattern(_COMMENTS, _QUOTED_STANDARD, _OPEN)
_ONLY_COMMENTS = re.compile(r"(?:\s+|--[^\n]*|/\*.*?\*/)*", re.DOTALL)


class UnterminatedSqlError(ValueError):
    """A quote, comment or dollar-quoted body is opened and never closed."""


def _pattern_for(dialect: str) -> re.Pattern[str]:
    adapter = adapter_for(dialect)
    if adapter.backslash_escapes:
        return _MYSQL
    if adapter.dollar_quoting:
        return _POSTGRESQL
    return _STANDARD


def split_statements(sql: str, dialect: str = "default") -> list[str]:
    """The statements of ``sql`` (stripped, without the ``;``), comment-only parts dropped.

    ``dialect`` is SQLAlchemy's dialect name (``postgresql``, ``mysql``, ``mariadb``,
    ``sqlite``); it decides which quoting rules apply.
    """
    pattern = _pattern_for(dialect)
    statements: list[str] = []
    start = position = 0
    while (match := pattern.search(sql, position)) is not None:
        if match.lastgroup == "open":
            line = sql.count("\n", 0, match.start()) + 1
            raise UnterminatedSqlError(
                f"SQL line {line}: {match.group()!r} is opened and never closed "
                "(a string, quoted name, comment or dollar-quoted body)"
            )
        position = match.end()
        if match.lastgroup == "end":
            statements.append(sql[start : match.start()])
            start = position
    statements.append(sql[start:])
    return [s.strip() for s in statements if not _ONLY_COMMENTS.fullmatch(s)]
