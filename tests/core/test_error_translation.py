"""``translate_error`` on driver errors built by hand: every code of the table, every driver
shape (asyncpg fields, psycopg ``diag``, ``(errno, message)`` tuples, sqlite3 codes), and
anything unexpected passing through unchanged."""

from __future__ import annotations

import sqlite3
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import exc as sa_exc

from viveka_db import (
    CheckViolationError,
    DatabaseError,
    DeadlockError,
    DuplicateKeyError,
    ForeignKeyViolationError,
    NotNullViolationError,
    SerializationFailureError,
    translate_error,
)
from viveka_db.dialects.mapped import mapped_class


class FakePgError(Exception):
    """Shaped like asyncpg's exceptions: SQLSTATE and server fields as attributes."""

    def __init__(self, sqlstate: str, **fields: Any) -> None:
        super().__init__("server message with the value SECRET")
        self.sqlstate = sqlstate
        for key, value in fields.items():
            setattr(self, key, value)


class FakePsycopgError(Exception):
    def __init__(self, sqlstate: str, **diag: Any) -> None:
        super().__init__("server message with the value SECRET")
        self.sqlstate = sqlstate
        self.diag = SimpleNamespace(**diag)


FakePgError.__module__ = "asyncpg.exceptions"
FakePsycopgError.__module__ = "psycopg.errors"


class FakeMysqlError(Exception):
    pass


FakeMysqlError.__module__ = "pymysql.err"


def wrap(orig: Exception, cls: type[sa_exc.DBAPIError] = sa_exc.IntegrityError) -> Any:
    return cls("INSERT INTO t VALUES (?)", ("SECRET",), orig)


@pytest.mark.parametrize(
    ("sqlstate", "family"),
    [
        ("23505", DuplicateKeyError),
        ("23503", ForeignKeyViolationError),
        ("23502", NotNullViolationError),
        ("23514", CheckViolationError),
        ("40001", SerializationFailureError),
        ("40P01", DeadlockError),
    ],
)
def test_postgresql_sqlstates(sqlstate: str, family: type[DatabaseError]) -> None:
    source = wrap(FakePgError(sqlstate, constraint_name="c", table_name="t"), sa_exc.DBAPIError)
    mapped = translate_error(source)
    assert isinstance(mapped, family)
    assert isinstance(mapped, sa_exc.DBAPIError)
    assert mapped.__cause__ is source.orig
    assert "SECRET" not in str(mapped) and "SECRET" not in repr(mapped)
    assert mapped.statement == "INSERT INTO t VALUES (?)" and mapped.params is None


def test_postgresql_columns_come_from_the_detail_without_values() -> None:
    orig = FakePgError(
        "23505", constraint_name="uq", table_name="users", detail="Key (a, b)=(SECRET, 1) exists."
    )
    mapped = translate_error(wrap(orig))
    assert isinstance(mapped, DuplicateKeyError)
    assert mapped.columns == ("a", "b") and mapped.constraint == "uq" and mapped.table == "users"
    assert "SECRET" not in str(mapped)


def test_psycopg_diag_fields() -> None:
    orig = FakePsycopgError("23502", column_name="email", table_name="users")
    mapped = translate_error(wrap(orig))
    assert isinstance(mapped, NotNullViolationError)
    assert mapped.columns == ("email",)


@pytest.mark.parametrize(
    ("errno", "message", "family", "expected"),
    [
        (
            1062,
            "Duplicate entry 'SECRET' for key 'users.uq_users_email'",
            DuplicateKeyError,
            "uq_users_email",
        ),
        (1062, "Duplicate entry 'SECRET' for key 'PRIMARY'", DuplicateKeyError, "PRIMARY"),
        (
            1451,
            "Cannot delete or update a parent row: a foreign key constraint fails (`db`.`kids`, "
            "CONSTRAINT `fk_kids` FOREIGN KEY (`parent_id`) REFERENCES `parents` (`id`))",
            ForeignKeyViolationError,
            "fk_kids",
        ),
        (1048, "Column 'email' cannot be null", NotNullViolationError, None),
        (1364, "Field 'email' doesn't have a default value", NotNullViolationError, None),
        (3819, "Check constraint 'ck_age' is violated.", CheckViolationError, "ck_age"),
        (4025, "CONSTRAINT `ck_age` failed for `db`.`users`", CheckViolationError, "ck_age"),
        (1213, "Deadlock found when trying to get lock", DeadlockError, None),
        (1205, "Lock wait timeout exceeded; try restarting transaction", DeadlockError, None),
    ],
)
def test_mysql_error_numbers(
    errno: int, message: str, family: type[DatabaseError], expected: str | None
) -> None:
    mapped = translate_error(wrap(FakeMysqlError(errno, message), sa_exc.OperationalError))
    assert isinstance(mapped, family)
    assert isinstance(mapped, sa_exc.OperationalError)  # the class it replaced
    assert getattr(mapped, "constraint", None) == expected
    assert "SECRET" not in str(mapped)
    assert str(errno) in str(mapped)


def test_mysql_foreign_key_names_table_and_columns() -> None:
    message = (
        "Cannot add or update a child row: a foreign key constraint fails (`db`.`kids`, "
        "CONSTRAINT `fk_kids` FOREIGN KEY (`parent_id`, `kind`) REFERENCES `parents` (`id`))"
    )
    mapped = translate_error(wrap(FakeMysqlError(1452, message)))
    assert isinstance(mapped, ForeignKeyViolationError)
    assert mapped.table == "kids" and mapped.columns == ("parent_id", "kind")


def test_sqlite_codes_and_messages() -> None:
    orig = sqlite3.IntegrityError("UNIQUE constraint failed: users.a, users.b")
    mapped = translate_error(wrap(orig))
    assert isinstance(mapped, DuplicateKeyError)
    assert mapped.table == "users" and mapped.columns == ("a", "b")
    locked = translate_error(
        wrap(sqlite3.OperationalError("database is locked"), sa_exc.OperationalError)
    )
    assert isinstance(locked, SerializationFailureError)


def test_dialect_argument_picks_the_adapter() -> None:
    plain = Exception(1062, "Duplicate entry 'SECRET' for key 'uq'")
    unknown_driver = wrap(plain)
    assert translate_error(unknown_driver) is unknown_driver  # the generic adapter: no SQLSTATE
    mapped = translate_error(wrap(plain), dialect="mariadb")
    assert isinstance(mapped, DuplicateKeyError) and mapped.constraint == "uq"


@pytest.mark.parametrize(
    "error",
    [
        ValueError("not a database error"),
        wrap(FakePgError("42601")),  # a syntax error: nothing of ours
        wrap(FakeMysqlError("no errno")),
        wrap(FakeMysqlError(9999, "unknown")),
        wrap(sqlite3.OperationalError('near "SELEC": syntax error'), sa_exc.OperationalError),
    ],
)
def test_anything_else_passes_through(error: BaseException) -> None:
    assert translate_error(error) is error


def test_already_mapped_errors_are_returned_as_they_are() -> None:
    mapped = translate_error(wrap(FakePgError("23505")))
    assert translate_error(mapped) is mapped


def test_mapped_classes_are_cached_and_keep_both_hierarchies() -> None:
    first = mapped_class(DuplicateKeyError, sa_exc.OperationalError)
    assert first is mapped_class(DuplicateKeyError, sa_exc.OperationalError)
    assert issubclass(first, DuplicateKeyError)
    assert issubclass(first, sa_exc.OperationalError)
    assert issubclass(first, sa_exc.IntegrityError)  # constraint violations: always
    retry = mapped_class(DeadlockError, sa_exc.DBAPIError)
    assert issubclass(retry, sa_exc.OperationalError)  # retryable: always
    assert first.__name__ == "DuplicateKeyError"


def test_family_classes_work_raised_by_application_code() -> None:
    error = DuplicateKeyError("email taken", columns=("email",), constraint="uq")
    assert error.orig is None and error.statement is None
    assert error.columns == ("email",) and str(error) == "email taken"


def test_metadata_names_only_the_constraint_that_failed() -> None:
    from sqlalchemy import Column, Integer, MetaData, String, Table, UniqueConstraint

    from viveka_db.dialects.base import Site
    from viveka_db.dialects.registry import adapter_for

    table = Table(
        "t",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("code", String(10), nullable=False),
        UniqueConstraint("code", name="uq_t_code"),
    )
    site = Site(table, writes_rows=True)
    sqlite = adapter_for("sqlite")
    duplicate = sqlite.map_error(
        wrap(sqlite3.IntegrityError("UNIQUE constraint failed: t.code")), site
    )
    assert isinstance(duplicate, DuplicateKeyError) and duplicate.constraint == "uq_t_code"
    missing = sqlite.map_error(
        wrap(sqlite3.IntegrityError("NOT NULL constraint failed: t.code")), site
    )
    assert isinstance(missing, NotNullViolationError) and missing.constraint is None
    mysql = adapter_for("mariadb")
    primary = mysql.map_error(
        wrap(FakeMysqlError(1062, "Duplicate entry '1' for key 'PRIMARY'")), site
    )
    assert isinstance(primary, DuplicateKeyError) and primary.columns == ("id",)


def test_the_written_table_comes_from_the_statement_when_no_site_is_known() -> None:
    """The error hook sometimes gets no compiled statement; the text still names the table."""
    import pymysql
    from sqlalchemy.exc import IntegrityError

    from viveka_db import NotNullViolationError, translate_error

    driver = pymysql.err.IntegrityError(1048, "Column 'name' cannot be null")
    wrapped = IntegrityError(
        "INSERT INTO core_err_users (email, name) VALUES (%s, %s)", ("secret@x", None), driver
    )
    mapped = translate_error(wrapped)
    assert isinstance(mapped, NotNullViolationError)
    assert mapped.table == "core_err_users" and mapped.columns == ("name",)
    assert "secret@x" not in str(mapped)
