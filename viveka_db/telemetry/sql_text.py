"""What a statement's text may tell telemetry: its shape, without a single literal value.

SQLAlchemy sends values as bound parameters, but ``text()`` SQL and ``literal_binds`` can
inline them, so every string, number and hex literal is replaced by ``?`` before the text
reaches a span or a log line. Quoted identifiers are kept, except double-quoted ones where
they may be strings (MySQL/MariaDB, SQLite). Results are cached per statement text, which
SQLAlchemy's compiled cache keeps to a small set.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

from viveka_db.dialects import adapter_for

__all__ = ["StatementShape", "sanitize", "shape_of"]

_TOKEN_PATTERN = r"""
      (?P<comment>--[^\n]*|/\*.*?\*/)
    | (?P<ident>`(?:[^`]|``)*`|\[[A-Za-z_][^\]'"]*\])
    | (?P<dquoted>DQUOTED)
    | (?P<string>\b[Ee]'(?:[^'\\]|\\.|'')*'|STRING)
    | (?P<dollar>\$(?P<tag>[A-Za-z_]\w*)?\$.*?\$(?P=tag)?\$)
    | (?P<param>[$:@]\w+|%\(\w+\)s|%s|\?)
    | (?P<word>[A-Za-z_][\w$]*)
    | (?P<number>0[xX][0-9A-Fa-f]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
    | (?P<unterminated>['"].*)
    """
_STANDARD_STRING = r"(?:\b[NnBbXx])?'(?:[^']|'')*'"
"""SQL's own string literal: a quote is doubled, a backslash is an ordinary character
(PostgreSQL with ``standard_conforming_strings``, its default since 9.1; SQLite)."""
_ESCAPED_STRING = r"(?:\b[NnBbXx])?'(?:[^'\\]|\\.|'')*'"
"""MySQL/MariaDB's: a backslash escapes the next character (also PostgreSQL's ``E'...'``)."""
_TOKENS = {
    escapes: re.compile(
        _TOKEN_PATTERN.replace("STRING", _ESCAPED_STRING if escapes else _STANDARD_STRING).replace(
            "DQUOTED", r'"(?:[^"\\]|\\.|"")*"' if escapes else r'"(?:[^"]|"")*"'
        ),
        re.VERBOSE | re.DOTALL,
    )
    for escapes in (False, True)
}
_OPERATION = re.compile(r"\s*(?:/\*.*?\*/\s*|--[^\n]*\n\s*)*([A-Za-z]+)", re.DOTALL)
_COLLECTION = re.compile(
    r"\b(?:FROM|INTO|UPDATE|COPY|TABLE(?:\s+IF\s+(?:NOT\s+)?EXISTS)?|JOIN)\s+"
    r"((?:[A-Za-z_][\w$]*|`[^`]+`|\"[^\"]+\"|\[[^\]]+\])"
    r"(?:\.(?:[A-Za-z_][\w$]*|`[^`]+`|\"[^\"]+\"|\[[^\]]+\]))*)",
    re.IGNORECASE,
)
_QUOTES = str.maketrans("", "", '`"[]')


class StatementShape(NamedTuple):
    """The telemetry view of one statement text."""

    text: str
    """The text with every literal replaced by ``?`` (``db.query.text``)."""
    operation: str | None
    """The first keyword, upper-cased (``db.operation.name``)."""
    collection: str | None
    """The first table named after FROM/INTO/UPDATE/COPY/TABLE/JOIN (``db.collection.name``)."""


def sanitize(
    statement: str, *, double_quotes_are_strings: bool = False, backslash_escapes: bool = False
) -> str:
    """``statement`` with every literal value replaced by ``?``; placeholders stay as they are.

    ``double_quotes_are_strings`` and ``backslash_escapes`` describe the database's string
    syntax (both true on MySQL/MariaDB); with the wrong rule for a backslash-ended string
    (``'C:\\'``) the literals after it would be read as SQL and kept. A quote that opens
    a literal never closed hides everything after it.
    """

    def replace(match: re.Match[str]) -> str:
        kind = match.lastgroup
        if kind in ("string", "number", "dollar", "unterminated") or (
            kind == "dquoted" and double_quotes_are_strings
        ):
            return "?"
        return match.group()

    return _TOKENS[backslash_escapes].sub(replace, statement)


@functools.lru_cache(maxsize=1024)
def shape_of(statement: str, dialect: str = "") -> StatementShape:
    """The sanitized text, operation and collection of ``statement`` (cached).

    ``dialect`` (SQLAlchemy's dialect name) picks the string syntax: on MySQL/MariaDB a
    backslash escapes and double quotes delimit strings; SQLite reads a double-quoted
    name that is no column as a string; PostgreSQL has neither.
    """
    adapter = adapter_for(dialect)
    text = sanitize(
        statement,
        double_quotes_are_strings=adapter.double_quotes_are_strings,
        backslash_escapes=adapter.backslash_escapes,
    )
    found = _OPERATION.match(text)
    operation = found.group(1).upper() if found else None
    target = _COLLECTION.search(statement)  # a table name, quoted or not: no literal
    collection = target.group(1).translate(_QUOTES) if target else None
    return StatementShape(text, operation, collection)
