"""MySQL/MariaDB fast path for ``insert_all``: multi-row ``INSERT`` the way the driver does it.

aiomysql's own ``executemany`` escapes each row and packs as many as fit into one statement;
this does the same, on the connection of the current transaction. Values pass through each
column type's bind processing first and are then escaped by the driver, exactly as with any
parameterised statement; both run column by column, so a value shared by every row (the
statement's timestamp) is converted and escaped once.

Generated keys: InnoDB gives the rows of one multi-row ``INSERT ... VALUES`` consecutive
auto-increment values (``first``, ``first + step``, ...) when ``innodb_autoinc_lock_mode``
is 0 or 1 (MariaDB's default; documented for "simple inserts", whose row count is known in
advance), and the server reports ``first`` with the statement's result. Where that holds
(checked once per call, in one round trip), the keys cost nothing more. Otherwise (lock
mode 2, as on Galera and MySQL 8's default, or another storage engine) MariaDB 10.5+ adds
``RETURNING`` of the keys, which the driver reads row by row (about as long as the
``INSERT`` itself takes), and plain MySQL leaves the batch to the unit of work.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable
from itertools import accumulate, repeat
from operator import add
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from viveka_db.repository.bulk_plan import BulkPlan
from viveka_db.repository.pg_copy import apply_column, processed_columns
from viveka_db.repository.rows import ColumnBatch
from viveka_db.telemetry.statements import driver_statement

__all__ = ["mysql_insert"]

STATEMENT_BYTES = 4 * 1024 * 1024
"""Statement size per batch; far below the 16-64 MiB ``max_allowed_packet`` defaults."""
CONSECUTIVE_MIN_ROWS = 50
"""From this many rows on, checking for consecutive keys (one round trip) beats ``RETURNING``."""

_AUTOINC_QUERY = (
    "SELECT @@innodb_autoinc_lock_mode, @@auto_increment_increment, "
    "(SELECT ENGINE FROM information_schema.TABLES "
    "WHERE TABLE_SCHEMA = COALESCE(%s, DATABASE()) AND TABLE_NAME = %s)"
)


async def mysql_insert(conn: AsyncConnection, plan: BulkPlan, batch: ColumnBatch) -> bool:
    """Insert the rows; ``False`` (nothing written) where this path does not apply."""
    dialect = conn.dialect
    generated = batch.missing_pk > 0
    if generated and batch.missing_pk != len(batch):
        return False
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    escape = getattr(driver, "escape", None)
    if escape is None or dialect.paramstyle not in ("format", "pyformat"):
        return False
    step: int | None = None
    if generated:
        if len(batch) >= CONSECUTIVE_MIN_ROWS:
            step = await _consecutive_step(driver, plan)
        if step is None and not dialect.insert_returning:
            return False
    statement = _MultiRowInsert(dialect, plan, batch, generated, returning=step is None)
    ids = await statement.execute(conn, driver, statement.row_literals(escape), step)
    if generated:
        batch.fill_keys(plan, ids)
    return True


class _MultiRowInsert:
    """The ``INSERT ... VALUES`` text around the rows' literals, and its columns' values.

    ``generated``: the key column is left out (the database generates the keys), and the
    keys are read back, by ``RETURNING`` when ``returning``.
    """

    def __init__(
        self,
        dialect: Dialect,
        plan: BulkPlan,
        batch: ColumnBatch,
        generated: bool,
        *,
        returning: bool,
    ) -> None:
        self.dialect = dialect
        pk = plan.generated_pk
        self.generated = generated
        self.kept = [
            (column, values)
            for column, values in zip(plan.columns, batch.columns, strict=True)
            if not (generated and column is pk)
        ]
        quote = dialect.identifier_preparer.quote
        self.table = dialect.identifier_preparer.format_table(plan.table)
        names = ", ".join(quote(column.name) for column, _ in self.kept)
        self.prefix = f"INSERT INTO {self.table} ({names}) VALUES ("
        self.suffix = ")"
        if generated and returning and pk is not None:
            self.suffix = f") RETURNING {quote(pk.name)}"
        # what telemetry may see of the statement (no values)
        self.shape = self.prefix + ", ".join("?" * len(self.kept)) + self.suffix

    def row_literals(self, escape: Callable[[Any], str]) -> list[str]:
        """``"v1,v2,..."`` per row: bind-processed and escaped a column at a time."""
        kept = self.kept
        processed = processed_columns(self.dialect, [c for c, _ in kept], [v for _, v in kept])
        escaped = [apply_column(escape, values) for values in processed]
        return list(map(",".join, zip(*escaped, strict=True)))

    async def execute(
        self, conn: AsyncConnection, driver: Any, literals: list[str], step: int | None
    ) -> list[Any]:
        """Send the rows in statements of at most :data:`STATEMENT_BYTES`; the generated
        keys in row order (none unless ``generated``)."""
        prefix, suffix = self.prefix, self.suffix
        ids: list[Any] = []
        async with driver.cursor() as cursor:
            for start, stop in _batches(literals, STATEMENT_BYTES - len(prefix) - len(suffix)):
                with driver_statement(conn.sync_engine, self.shape):
                    await cursor.execute(prefix + "),(".join(literals[start:stop]) + suffix)
                if self.generated:
                    ids.extend(await self._keys(cursor, stop - start, step))
        return ids

    async def _keys(self, cursor: Any, rows: int, step: int | None) -> Iterable[Any]:
        """The keys one statement of ``rows`` rows generated: read back (``RETURNING``) or
        counted from the first, ``step`` apart."""
        if step is None:
            return sorted(r[0] for r in await cursor.fetchall())
        first = cursor.lastrowid
        if not first or cursor.rowcount != rows:
            raise RuntimeError(
                f"INSERT of {rows} rows into {self.table} reported {cursor.rowcount} "
                f"rows and first key {first!r}; cannot tell the generated keys"
            )
        return range(first, first + rows * step, step)


async def _consecutive_step(driver: Any, plan: BulkPlan) -> int | None:
    """The key step of one multi-row ``INSERT`` if its keys are consecutive, else ``None``."""
    async with driver.cursor() as cursor:
        await cursor.execute(_AUTOINC_QUERY, (plan.table.schema, plan.table.name))
        row = await cursor.fetchone()
    if row is None:
        return None
    lock_mode, step, engine = row
    if lock_mode is None or int(lock_mode) not in (0, 1) or str(engine).lower() != "innodb":
        return None
    return int(step) if step else None


def _batches(literals: list[str], budget: int) -> list[tuple[int, int]]:
    """``(start, stop)`` slices of ``literals`` whose joined statement fits ``budget`` bytes."""
    ends = list(accumulate(map(add, map(len, literals), repeat(3))))  # each + "),("
    out: list[tuple[int, int]] = []
    start, base = 0, 0
    while start < len(literals):
        stop = max(bisect_right(ends, base + budget), start + 1)
        out.append((start, stop))
        start, base = stop, ends[stop - 1]
    return out
