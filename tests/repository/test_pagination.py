"""Pages and keyset slices agree with a plain ordered query; bad input is refused."""

from __future__ import annotations

from typing import Any

import pytest

from tests.repository.models import Item, ItemRepo, User, UserRepo
from viveka_db import (
    DatabaseSessionFactory,
    InvalidCursorError,
    Page,
    PaginationError,
    UnknownFieldError,
)
from viveka_db.base.db_repo import Page as PageFromSeedPath


async def _items(n: int = 57) -> ItemRepo:
    repo = ItemRepo()
    # few distinct qty values (ties), some NULL notes, to exercise the tie-breaker and NULLs
    await repo.insert_all(
        [
            {
                "sku": f"k{i:03d}",
                "shop": f"s{i % 3}",
                "qty": i % 5,
                "note": None if i % 4 == 0 else f"n{i % 7}",
            }
            for i in range(n)
        ]
    )
    return repo


def _ids(items: list[Item]) -> list[int]:
    return [item.id for item in items]


SORTS: list[Any] = [
    None,
    Item.qty,
    Item.qty.desc(),
    [Item.shop.desc(), Item.qty],
    [Item.note, Item.qty.desc()],
    [Item.note.desc()],
    "-qty",
]


@pytest.mark.parametrize("sort", SORTS, ids=lambda s: repr(s)[:40])
async def test_pages_and_slices_agree_with_ordered_query(
    db: DatabaseSessionFactory, sort: Any
) -> None:
    repo = await _items()
    expected = await repo.all(repo.select().order_by(*_order_for(sort)))
    assert len(expected) == 57

    pages: list[Item] = []
    page_no = 1
    while True:
        page = await repo.get_page(page=page_no, size=10, sort=sort)
        assert page.total == 57 and page.pages == 6 and page.size == 10
        pages.extend(page.items)
        if not page.has_next:
            break
        page_no += 1
    assert page_no == 6
    assert _ids(pages) == _ids(expected)

    walked: list[Item] = []
    cursor = None
    slices = 0
    while True:
        chunk = await repo.get_slice(after=cursor, size=8, sort=sort)
        walked.extend(chunk.items)
        slices += 1
        cursor = chunk.next_cursor
        if cursor is None:
            break
        assert chunk.has_next and len(chunk.items) == 8
    assert slices == 8
    assert _ids(walked) == _ids(expected)


def _order_for(sort: Any) -> list[Any]:
    """The same order spelled by hand: NULLs last ascending / first descending, then the key."""
    from sqlalchemy import asc, desc

    keys: list[Any] = [] if sort is None else (sort if isinstance(sort, list) else [sort])
    out: list[Any] = []
    for key in keys:
        if isinstance(key, str):
            key = (
                desc(getattr(Item, key.lstrip("-"))) if key.startswith("-") else getattr(Item, key)
            )
        element = getattr(key, "element", key)
        descending = getattr(key, "modifier", None) is not None and "desc" in key.modifier.__name__
        column = getattr(Item, element.key) if hasattr(element, "key") else element
        if column.key == "note":
            out.append(column.is_(None).desc() if descending else column.is_(None).asc())
        out.append(desc(column) if descending else asc(column))
    out.append(Item.id)
    return out


async def test_page_shape(db: DatabaseSessionFactory) -> None:
    repo = await _items(25)
    page = await repo.get_page(page=3, size=10, sort=Item.sku)
    assert isinstance(page, Page) and PageFromSeedPath is Page
    assert [i.sku for i in page.items] == [f"k{i:03d}" for i in range(20, 25)]
    assert (page.total, page.pages, page.has_next, page.has_previous) == (25, 3, False, True)
    beyond = await repo.get_page(page=9, size=10)
    assert beyond.items == [] and beyond.total == 25 and not beyond.has_next
    filtered = await repo.get_page(1, 5, sort=Item.sku.desc(), query=repo.where(Item.shop == "s0"))
    assert filtered.total == 9 and [i.sku for i in filtered.items][:2] == ["k024", "k021"]
    empty = await UserRepo().get_page()
    assert (empty.total, empty.pages, empty.has_next, empty.items) == (0, 0, False, [])


async def test_slice_with_query_and_empty_table(db: DatabaseSessionFactory) -> None:
    first = await UserRepo().get_slice(size=5)
    assert first.items == [] and first.next_cursor is None
    repo = await _items(30)
    query = repo.where(Item.shop == "s1")
    seen: list[str] = []
    cursor = None
    while True:
        chunk = await repo.get_slice(after=cursor, size=4, sort=Item.qty, query=query)
        seen.extend(i.sku for i in chunk.items)
        if chunk.next_cursor is None:
            break
        cursor = chunk.next_cursor
    assert sorted(seen) == sorted(f"k{i:03d}" for i in range(30) if i % 3 == 1)


@pytest.mark.parametrize(
    ("page", "size"),
    [(0, 10), (-1, 10), (1, 0), (1, -5), (1, 10_001), ("2", 10), (1, 2.5), (True, 10)],
)
async def test_bad_page_arguments(db: DatabaseSessionFactory, page: Any, size: Any) -> None:
    with pytest.raises(PaginationError) as info:
        await ItemRepo().get_page(page=page, size=size)
    assert isinstance(info.value, ValueError)


async def test_bad_sort_and_cursor(db: DatabaseSessionFactory) -> None:
    repo = await _items(12)
    with pytest.raises(UnknownFieldError):
        await repo.get_page(sort="qtty")
    with pytest.raises(PaginationError, match="cannot sort Item"):
        await repo.get_page(sort=User.name)
    with pytest.raises(PaginationError):
        await repo.get_slice(size=0)

    cursor = (await repo.get_slice(size=5, sort=Item.qty)).next_cursor
    assert cursor is not None
    body, sig = cursor.split(".")
    tampered = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1] + "." + sig
    for bad in (tampered, "garbage", "a.b", "", cursor + "x", cursor.replace(".", "..")):
        with pytest.raises(InvalidCursorError) as info:
            await repo.get_slice(after=bad, size=5, sort=Item.qty)
        assert isinstance(info.value, ValueError)
    with pytest.raises(InvalidCursorError, match="different entity or sort"):
        await repo.get_slice(after=cursor, size=5, sort=Item.qty.desc())
    with pytest.raises(InvalidCursorError):
        await UserRepo().get_slice(after=cursor, size=5, sort=User.age)
