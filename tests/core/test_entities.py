"""Entities: @entity/@table in both orders, abstract intermediaries, misuse,
the registry, and both attribute styles working on every backend."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, String, inspect
from sqlalchemy.orm import Mapped, mapped_column

from tests.core.models import Code, Item
from viveka_db import (
    DatabaseSessionFactory,
    DbRepo,
    EntityDefinitionError,
    VivekaDbBase,
    entity,
    get_registered_entities,
    table,
)


def is_mapped(cls: type) -> bool:
    return inspect(cls, raiseerr=False) is not None and "__mapper__" in cls.__dict__


class Audited(VivekaDbBase):
    """No table name: an abstract intermediary, never mapped on its own."""

    created_by = Column(String(30), nullable=True)


@entity
@table("core_documents")
class Document(Audited):
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str]


def test_documented_and_reversed_order_both_map_and_register() -> None:
    for cls, name in ((Item, "core_items"), (Code, "core_codes")):
        assert is_mapped(cls)
        assert cls.__tablename__ == name
        assert cls.__table__.name == name  # type: ignore[attr-defined]
        assert cls in get_registered_entities()
        assert VivekaDbBase.metadata.tables[name] is cls.__table__  # type: ignore[attr-defined]


def test_class_without_table_name_is_abstract_and_unmapped() -> None:
    assert Audited.__dict__.get("__abstract__") is True
    assert not is_mapped(Audited)
    assert Audited not in get_registered_entities()
    # its columns are inherited by the mapped subclass
    assert set(Document.__table__.columns.keys()) == {"id", "title", "created_by"}  # type: ignore[attr-defined]


def test_table_on_a_previously_abstract_class_maps_it() -> None:
    class CoreLateMapped(VivekaDbBase):
        id = Column(Integer, primary_key=True)

    assert not is_mapped(CoreLateMapped)
    table("core_late_mapped")(CoreLateMapped)
    assert is_mapped(CoreLateMapped)
    assert CoreLateMapped not in get_registered_entities()  # @table alone does not register
    entity(CoreLateMapped)
    assert CoreLateMapped in get_registered_entities()
    table("core_late_mapped")(CoreLateMapped)  # the same name again is harmless


def test_entity_must_subclass_the_base() -> None:
    class NotAnEntity:
        id = Column(Integer, primary_key=True)

    for decorator in (entity, table("core_nope")):
        with pytest.raises(EntityDefinitionError, match="subclasses of VivekaDbBase") as info:
            decorator(NotAnEntity)
        assert isinstance(info.value, TypeError)
        assert "class NotAnEntity(VivekaDbBase)" in str(info.value)
    with pytest.raises(EntityDefinitionError):
        entity(lambda: None)  # type: ignore[arg-type]


def test_table_twice_with_different_names() -> None:
    with pytest.raises(EntityDefinitionError, match="already mapped to table 'core_twice_b'"):

        @table("core_twice_a")
        @table("core_twice_b")
        class CoreTwice(VivekaDbBase):
            id = Column(Integer, primary_key=True)

    with pytest.raises(EntityDefinitionError, match="conflicts"):

        @table("core_declared_other")
        class CoreDeclared(VivekaDbBase):
            __tablename__ = "core_declared"
            __abstract__ = True
            id = Column(Integer, primary_key=True)


def test_duplicate_table_name() -> None:
    with pytest.raises(EntityDefinitionError, match="'core_items' is already used by Item"):

        @entity
        @table("core_items")
        class CoreItemAgain(VivekaDbBase):
            id = Column(Integer, primary_key=True)

    with pytest.raises(EntityDefinitionError, match="non-empty table name"):
        table("  ")


def test_registry_with_a_name() -> None:
    @entity(name="core.named")
    @table("core_named_entity")
    class CoreNamed(VivekaDbBase):
        id = Column(Integer, primary_key=True)

    assert CoreNamed in get_registered_entities()


def test_repr_shows_the_primary_key_only() -> None:
    assert repr(Item(id=5, tag="secret-ish")) == "Item(id=5)"


async def test_both_attribute_styles_round_trip(db: DatabaseSessionFactory) -> None:
    docs = DbRepo(Document)
    (doc,) = await docs.insert_all([Document(title="t" * 200, created_by="me")])
    loaded = await docs.get_by_id(doc.id)
    assert loaded is not None
    assert (loaded.title, loaded.created_by) == ("t" * 200, "me")
