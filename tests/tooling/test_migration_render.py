"""The autogenerate hooks in isolation: imports for foreign types, enum drops, index drops."""

from __future__ import annotations

import enum
from types import SimpleNamespace

from alembic.operations import ops
from sqlalchemy import Column, Enum, Integer, MetaData, String, Table
from sqlalchemy.types import TypeDecorator

from viveka_db import UTCDateTime
from viveka_db.migrations.render import (
    DropEnumTypesOp,
    drop_enum_types,
    render_item,
    skip_index_drops_of_dropped_tables,
)


class Cents(TypeDecorator[int]):
    impl = Integer
    cache_ok = True


Cents.__module__ = "myapp.types"  # as if the project defined it


def test_types_from_outside_sqlalchemy_get_their_module_imported() -> None:
    context = SimpleNamespace(imports=set[str]())
    for type_ in (UTCDateTime(), Cents(), String(10), Integer()):
        assert render_item("type", type_, context) is False  # Alembic still renders it
    assert context.imports == {"import viveka_db.base.types", "import myapp.types"}
    assert render_item("column", Column("x", Integer), context) is False


class Mood(enum.Enum):
    HAPPY = "happy"


def _script(upgrade: list[ops.MigrateOperation], downgrade: list[ops.MigrateOperation]) -> object:
    return SimpleNamespace(
        upgrade_ops=ops.UpgradeOps(ops=upgrade), downgrade_ops=ops.DowngradeOps(ops=downgrade)
    )


def test_a_downgrade_drops_the_enum_types_of_the_tables_it_drops() -> None:
    metadata = MetaData()
    people = Table(
        "people", metadata, Column("id", Integer, primary_key=True), Column("mood", Enum(Mood))
    )
    other = Table(
        "other", metadata, Column("id", Integer, primary_key=True), Column("mood", Enum(Mood))
    )
    script = _script(
        [ops.CreateTableOp.from_table(people)],
        [ops.DropTableOp.from_table(people)],
    )
    drop_enum_types(metadata, script)
    last = script.downgrade_ops.ops[-1]  # type: ignore[attr-defined]
    assert isinstance(last, DropEnumTypesOp) and last.names == ["mood"]
    # a revision that only alters tables drops no type
    altering = _script([ops.ModifyTableOps("other", [])], [ops.ModifyTableOps("other", [])])
    drop_enum_types(metadata, altering)
    assert not any(isinstance(op, DropEnumTypesOp) for op in altering.downgrade_ops.ops)  # type: ignore[attr-defined]
    assert other.name == "other"


def test_index_drops_of_dropped_tables_are_left_out() -> None:
    metadata = MetaData()
    posts = Table("posts", metadata, Column("id", Integer, primary_key=True), Column("a", Integer))
    script = _script(
        [],
        [
            ops.ModifyTableOps("posts", [ops.DropIndexOp("ix_posts_a", "posts")]),
            ops.DropIndexOp("ix_kept", "kept"),
            ops.DropTableOp.from_table(posts),
        ],
    )
    skip_index_drops_of_dropped_tables(script)
    remaining = script.downgrade_ops.ops  # type: ignore[attr-defined]
    assert [type(op).__name__ for op in remaining] == ["DropIndexOp", "DropTableOp"]
    assert remaining[0].index_name == "ix_kept"
