"""Keyset slices and pages sorted by a many-to-one path (``sort="writer.name"``): every row
once, in the order Python computes, ties broken by the key, ``NULL`` s placed alike on
every database (last ascending, first descending), also when the related row is missing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.repository.query_data import make_data
from tests.repository.query_models import Post, Writer
from viveka_db import (
    DatabaseSessionFactory,
    DbRepo,
    EntityDefinitionError,
    InvalidCursorError,
    PaginationError,
    Spec,
    UnknownFieldError,
)


def _expected(posts: list[Post], name_of: Callable[[Post], str | None], desc: bool) -> list[int]:
    """Ids in the promised order: NULLs last ascending / first descending, then the key."""
    by_key = sorted(posts, key=lambda p: p.id)
    nulls = [p.id for p in by_key if name_of(p) is None]
    named = sorted((p for p in by_key if name_of(p) is not None), key=lambda p: name_of(p) or "")
    if desc:  # a stable sort keeps ascending keys among equal names
        named = sorted(named, key=lambda p: name_of(p) or "", reverse=True)
        return nulls + [p.id for p in named]
    return [p.id for p in named] + nulls


async def _walk(repo: DbRepo[Post], sort: Any, size: int, **kwargs: Any) -> list[int]:
    ids: list[int] = []
    after = None
    for _ in range(1000):
        chunk = await repo.get_slice(after, size, sort, **kwargs)
        ids += [p.id for p in chunk.items]
        if chunk.next_cursor is None:
            return ids
        after = chunk.next_cursor
    raise AssertionError("the walk never ended")


@pytest.mark.parametrize("size", [1, 7, 100])
async def test_slices_by_writer_name_visit_every_row_once(
    db: DatabaseSessionFactory, size: int
) -> None:
    data = await make_data()
    names: dict[int | None, str | None] = {w.id: w.name for w in data.writers}
    assert None in names.values() and len(set(names.values())) < len(names)  # NULLs and ties
    repo = DbRepo(Post)

    def writer(post: Post) -> str | None:
        return names[post.writer_id]

    assert await _walk(repo, "writer.name", size) == _expected(data.posts, writer, False)
    assert await _walk(repo, "-writer.name", size) == _expected(data.posts, writer, True)


async def test_a_missing_related_row_sorts_as_null(db: DatabaseSessionFactory) -> None:
    data = await make_data()
    names: dict[int | None, str | None] = {w.id: w.name for w in data.writers}
    repo = DbRepo(Post)

    def editor(post: Post) -> str | None:
        return names.get(post.editor_id)  # no editor: NULL

    assert any(p.editor_id is None for p in data.posts)
    assert await _walk(repo, "editor.name", 6) == _expected(data.posts, editor, False)
    assert await _walk(repo, ["-editor.name"], 6) == _expected(data.posts, editor, True)


async def test_path_sort_with_a_filter_and_loads(db: DatabaseSessionFactory) -> None:
    data = await make_data()
    repo = DbRepo(Post)
    spec = Spec.gte(Post.views, 4)
    ids = await _walk(repo, ["writer.name", "-views"], 5, query=spec, load=[Post.labels])
    assert sorted(ids) == sorted(p.id for p in data.posts if p.views >= 4)
    assert len(ids) == len(set(ids))
    page = await repo.get_page(2, 5, "writer.name", query=spec)
    assert page.total == len(ids)
    assert [p.id for p in page.items] == (await _walk(repo, "writer.name", 200, query=spec))[5:10]


async def test_path_cursors_are_signed_and_bound_to_the_sort(db: DatabaseSessionFactory) -> None:
    await make_data()
    repo = DbRepo(Post)
    first = await repo.get_slice(None, 5, "writer.name")
    assert first.next_cursor is not None
    with pytest.raises(InvalidCursorError):
        await repo.get_slice(first.next_cursor, 5, "editor.name")
    with pytest.raises(InvalidCursorError):
        await repo.get_slice(first.next_cursor[:-2] + "AA", 5, "writer.name")


async def test_bad_paths_are_refused(db: DatabaseSessionFactory) -> None:
    await make_data(posts=3)
    repo = DbRepo(Post)
    with pytest.raises(PaginationError, match="many"):
        await repo.get_slice(None, 5, "notes.stars")
    with pytest.raises(Exception, match="Writer") as missing:
        await repo.get_slice(None, 5, "writer.nmae")
    assert "name" in str(missing.value)
    writers = DbRepo(Writer)
    assert len((await writers.get_slice(None, 50, "name")).items) == 12  # plain keys unchanged


class ListedPathRepo(DbRepo[Post]):
    sortable = ("title", "writer.name")


class NarrowRepo(DbRepo[Post]):
    sortable = ("title",)


async def test_a_sortable_repository_accepts_only_the_paths_it_lists(
    db: DatabaseSessionFactory,
) -> None:
    data = await make_data()
    names: dict[int | None, str | None] = {w.id: w.name for w in data.writers}
    listed = ListedPathRepo(Post)
    expected = _expected(data.posts, lambda p: names[p.writer_id], False)
    assert await _walk(listed, "writer.name", 7) == expected
    for repo, sort in ((NarrowRepo(Post), "writer.name"), (listed, "writer.password_hash")):
        with pytest.raises(UnknownFieldError) as refused:
            await repo.get_slice(None, 5, sort)
        assert "password_hash" not in str(refused.value)  # never names what it refused
        assert "title" in str(refused.value)


def test_sortable_naming_a_path_that_does_not_exist_fails_at_class_creation() -> None:
    with pytest.raises(EntityDefinitionError, match="nickname"):

        class Broken(DbRepo[Post]):
            sortable = ("writer.nickname",)
