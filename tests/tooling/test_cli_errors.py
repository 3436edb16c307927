"""How the CLI words failures: one line, the driver's message, never a secret (in-process)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import JSON, Column, Integer, MetaData, Table
from sqlalchemy.exc import OperationalError

from viveka_db.cli.errors import CliError, describe_error, scrub
from viveka_db.codegen.fields import FieldSpec
from viveka_db.codegen.source import _Imports
from viveka_db.errors import ConfigurationError


def test_scrub_replaces_every_secret_longest_first() -> None:
    assert scrub("pw=abc123 and abc", ["abc", "abc123"]) == "pw=*** and ***"
    assert scrub("nothing secret", ["", "x" * 3]) == "nothing secret"


def test_describe_error_prefers_the_drivers_message_and_one_line() -> None:
    driver = ConnectionRefusedError("connect failed for postgres:hunter2@db\nsecond line")
    wrapped = OperationalError("SELECT 1", {}, driver)
    assert describe_error(wrapped, ["hunter2"]) == (
        "ConnectionRefusedError: connect failed for postgres:***@db"
    )
    assert describe_error(CliError("no models given")) == "no models given"
    assert describe_error(TimeoutError()) == "timed out"


def test_our_own_errors_are_shown_without_their_type_name() -> None:
    """viveka_db's errors are worded for users (a bad --models, a migrations directory)."""
    assert describe_error(ConfigurationError("no migrations directory at x")) == (
        "no migrations directory at x"
    )
    assert describe_error(ValueError("bad")) == "ValueError: bad"


def test_source_imports_render_stdlib_pydantic_then_models() -> None:
    imports = _Imports()
    assert imports.type_name(uuid.UUID) == "uuid.UUID"
    assert imports.type_name(int) == "int"
    assert imports.type_name(Any) == "Any"
    assert imports.type_name(FieldSpec) == "FieldSpec"
    assert imports.render() == [
        "import uuid",
        "from typing import Any",
        "",
        "from pydantic import BaseModel, ConfigDict",
        "",
        "from viveka_db.codegen.fields import FieldSpec",
    ]


def test_columns_without_a_python_type_become_any() -> None:
    from viveka_db.codegen.fields import _python_type

    table = Table(
        "tool_untyped", MetaData(), Column("id", Integer, primary_key=True), Column("doc", JSON)
    )
    assert _python_type(table.c.doc) is Any
