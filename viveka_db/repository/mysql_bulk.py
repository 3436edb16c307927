"""MySQL/MariaDB fast path for ``insert_all``: multi-row ``INSERT`` the way the driver does it.

aiomysql's own ``executemany`` escapes each row and packs as many as fit into one packet;
this does the same, on the connection of the current transaction, and on MariaDB (10.5+)
adds ``RETURNING`` of the generated keys, which it assigns in row order (auto-increment
values of one statement ascend). Values pass through each column type's bind processing
first and are then escaped by the driver, exactly as with any parameterised statement.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from viveka_db.repository.pg_copy import apply_memoized, processed_records
from viveka_db.repository.rows import BulkPlan, PreparedRows

__all__ = ["mysql_insert"]

PACKET_BYTES = 4 * 1024 * 1024
"""Statement size per batch; far below the 16-64 MiB ``max_allowed_packet`` defaults."""


async def mysql_insert(conn: AsyncConnection, plan: BulkPlan, prepared: PreparedRows) -> bool:
    """Insert the rows; ``False`` (nothing written) where this path does not apply."""
    dialect = conn.dialect
    rows = prepared.rows
    generated = prepared.missing_pk > 0
    if generated and (prepared.missing_pk != len(rows) or not dialect.insert_returning):
        return False
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    escape = getattr(driver, "escape", None)
    if escape is None or dialect.paramstyle not in ("format", "pyformat"):
        return False
    pk = plan.generated_pk
    pairs = [
        (key, column)
        for key, column in zip(plan.keys, plan.columns, strict=True)
        if not (generated and column is pk)
    ]
    quote = dialect.identifier_preparer.quote
    table = dialect.identifier_preparer.format_table(plan.table)
    prefix = f"INSERT INTO {table} ({', '.join(quote(c.name) for _, c in pairs)}) VALUES "
    suffix = f" RETURNING {quote(pk.name)}" if generated and pk is not None else ""
    records = processed_records(dialect, pairs, rows)
    # escaped column by column: a value shared by many rows (the statement's timestamp) is
    # escaped once
    escaped = [apply_memoized(escape, list(column)) for column in zip(*records, strict=True)]
    literals = ["(" + ",".join(values) + ")" for values in zip(*escaped, strict=True)]
    ids: list[Any] = []
    async with driver.cursor() as cursor:
        batch: list[str] = []
        size = len(prefix)
        for literal in literals:
            if batch and size + len(literal) > PACKET_BYTES:
                await _send(cursor, prefix + ",".join(batch) + suffix, ids, generated)
                batch, size = [], len(prefix)
            batch.append(literal)
            size += len(literal) + 1
        if batch:
            await _send(cursor, prefix + ",".join(batch) + suffix, ids, generated)
    if generated and pk is not None:
        key = plan.mapper.get_property_by_column(pk).key
        for row, ident in zip(rows, ids, strict=True):
            row[key] = ident
    return True


async def _send(cursor: Any, sql: str, ids: list[Any], returning: bool) -> None:
    await cursor.execute(sql)
    if returning:
        ids.extend(sorted(r[0] for r in await cursor.fetchall()))
