"""What a statement's text may tell telemetry: its shape, without a single literal value.

SQLAlchemy sends values as bound parameters, but ``text()`` SQL and ``literal_binds`` can
inline them, so every string, number and hex literal is replaced by ``?`` before the text
reaches a span or a log line. Quoted identifiers are kept (on MySQL/MariaDB a double-quoted
token is a string, so it is replaced there). Results are cached per statement text, which
SQLAlchemy's compiled cache keeps to a small set.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

__all__ = ["StatementShape", "sanitize", "shape_of"]

_TOKENS = re.compile(
    r"""
      (?P<comment>--[^\n]*|/\*.*?\*/)
    | (?P<ident>`(?:[^`]|``)*`|\[[^\]]*\])
    | (?P<dquoted>"(?:[^"\\]|\\.|"")*")
    | (?P<string>(?:\b[EeNnBbXx])?'(?:[^'\\]|\\.|'')*')
    | (?P<dollar>\$(?P<tag>[A-Za-z_]\w*)?\$.*?\$(?P=tag)?\$)
    | (?P<param>[$:@]\w+|%\(\w+\)s|%s|\?)
    | (?P<word>[A-Za-z_][\w$]*)
    | (?P<number>0[xX][0-9A-Fa-f]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
    """,
    re.VERBOSE | re.DOTALL,
)
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


def sanitize(statement: str, *, double_quotes_are_strings: bool = False) -> str:
    """``statement`` with every literal value replaced by ``?``; placeholders stay as they are."""

    def replace(match: re.Match[str]) -> str:
        kind = match.lastgroup
        if kind in ("string", "number", "dollar") or (
            kind == "dquoted" and double_quotes_are_strings
        ):
            return "?"
        return match.group()

    return _TOKENS.sub(replace, statement)


@functools.lru_cache(maxsize=1024)
def shape_of(statement: str, double_quotes_are_strings: bool = False) -> StatementShape:
    """The sanitized text, operation and collection of ``statement`` (cached)."""
    text = sanitize(statement, double_quotes_are_strings=double_quotes_are_strings)
    found = _OPERATION.match(text)
    operation = found.group(1).upper() if found else None
    target = _COLLECTION.search(text)
    collection = target.group(1).translate(_QUOTES) if target else None
    return StatementShape(text, operation, collection)
