"""The Conduit example over HTTP (the full RealWorld suite runs with newman: run_newman.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import insert

from examples.conduit.app import create_app
from examples.conduit.entities import Article, Favorite, Tag, User, article_tags
from examples.conduit.repositories import TagRepo
from viveka_db import (
    DatabaseSessionFactory,
    DbRepo,
    MemoryCache,
    current_session,
    transactional,
    use_cache,
)
from viveka_db.cache.current import reset
from viveka_db.testing import factory_for

ADA = {"username": "ada", "email": "ada@example.com", "password": "secret"}


@pytest.fixture
def conduit_cache() -> MemoryCache:
    return MemoryCache()


@pytest.fixture
async def conduit(tmp_path: Path, conduit_cache: MemoryCache) -> AsyncIterator[httpx.AsyncClient]:
    """A client of Conduit on a fresh SQLite file (tables created at start-up)."""
    await DatabaseSessionFactory.close_all()
    use_cache(conduit_cache)
    url = f"sqlite+aiosqlite:///{tmp_path / 'conduit.db'}"
    app = create_app({"database": {"url": url}}, create_tables=True)
    try:
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://c/api") as client:
                yield client
    finally:
        reset()
        await DatabaseSessionFactory.close_all()


async def _token(client: httpx.AsyncClient, user: dict[str, str]) -> dict[str, str]:
    registered = await client.post("/users", json={"user": user})
    assert registered.status_code == 201, registered.text
    login = await client.post("/users/login", json={"user": user})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Token {login.json()['user']['token']}"}


async def test_register_login_write_and_list(conduit: httpx.AsyncClient) -> None:
    auth = await _token(conduit, ADA)
    assert (await conduit.get("/tags")).json() == {"tags": []}  # cached until an article adds some
    article = {"title": "Async ORMs", "description": "d", "body": "b", "tagList": ["sql", "py"]}
    created = await conduit.post("/articles", json={"article": article}, headers=auth)
    assert created.status_code == 201, created.text
    body = created.json()["article"]
    assert body["tagList"] == ["py", "sql"] and body["author"]["username"] == "ada"
    assert body["createdAt"].endswith("Z") and body["favoritesCount"] == 0

    favorited = await conduit.post(f"/articles/{body['slug']}/favorite", headers=auth)
    assert favorited.json()["article"]["favorited"] is True
    listed = (await conduit.get("/articles", params={"tag": "sql", "favorited": "ada"})).json()
    assert listed["articlesCount"] == 1
    assert listed["articles"][0]["favoritesCount"] == 1
    assert listed["articles"][0]["favorited"] is False  # nobody logged in
    assert (await conduit.get("/tags")).json() == {"tags": ["py", "sql"]}


async def test_errors_are_answered_with_their_status(conduit: httpx.AsyncClient) -> None:
    auth = await _token(conduit, ADA)
    taken = await conduit.post("/users", json={"user": {**ADA, "email": "other@example.com"}})
    assert taken.status_code == 422
    assert taken.json() == {"errors": {"username": ["has already been taken"]}}
    assert (await conduit.get("/articles/nope")).status_code == 404
    assert (await conduit.get("/profiles/nobody")).status_code == 404
    assert (await conduit.get("/user")).status_code == 401
    assert (await conduit.get("/user", headers={"Authorization": "Token x"})).status_code == 401
    wrong = {"user": {"email": ADA["email"], "password": "wrong"}}
    assert (await conduit.post("/users/login", json=wrong)).status_code == 401

    eve = await _token(conduit, {"username": "eve", "email": "eve@x.org", "password": "p"})
    new = {"title": "Mine", "description": "d", "body": "b"}
    slug = (await conduit.post("/articles", json={"article": new}, headers=auth)).json()
    slug = slug["article"]["slug"]
    assert (await conduit.delete(f"/articles/{slug}", headers=eve)).status_code == 403
    assert (await conduit.delete(f"/articles/{slug}", headers=auth)).status_code == 204


async def test_profiles_follow_feed_and_renames(
    conduit: httpx.AsyncClient, conduit_cache: MemoryCache
) -> None:
    ada = await _token(conduit, ADA)
    bob = await _token(conduit, {"username": "bob", "email": "bob@x.org", "password": "p"})
    new = {"title": "Hello", "description": "d", "body": "b"}
    await conduit.post("/articles", json={"article": new}, headers=bob)
    assert (await conduit.get("/articles/feed", headers=ada)).json()["articlesCount"] == 0
    followed = await conduit.post("/profiles/bob/follow", headers=ada)
    assert followed.json()["profile"]["following"] is True
    feed = (await conduit.get("/articles/feed", headers=ada)).json()
    assert feed["articlesCount"] == 1 and feed["articles"][0]["author"]["following"] is True

    hits = conduit_cache.stats().hits
    assert (await conduit.get("/profiles/bob")).json()["profile"]["bio"] == ""
    assert conduit_cache.stats().hits == hits + 1  # the profile came from the cache
    changes = {"user": {"username": "rob", "bio": "hi"}}
    renamed = await conduit.put("/user", json=changes, headers=bob)
    assert renamed.json()["user"]["username"] == "rob"
    assert (await conduit.get("/profiles/bob")).status_code == 404  # the old name was evicted
    assert (await conduit.get("/profiles/rob")).json()["profile"]["bio"] == "hi"


async def _seed_articles() -> tuple[list[User], list[Article]]:
    """Rows from factories, no HTTP: three authors, twelve articles, tags and favorites."""
    people = await factory_for(User, seed=7).create_batch(3)
    written = await factory_for(Article, seed=8).create_batch(12, author=people[0])
    written += await factory_for(Article, seed=9).create_batch(6, author=people[1])
    sql, py = await factory_for(Tag, seed=10).create_batch(2)

    @transactional
    async def link() -> None:
        rows = [{"article_id": a.id, "tag_id": t.id} for a in written[:8] for t in (sql, py)]
        await current_session().execute(insert(article_tags), rows)  # 2 tags on 8 articles
        likes = [(p, a) for p in people for a in written[4:10]]  # 3 fans each
        await DbRepo(Favorite).insert_all(
            [Favorite(user_id=p.id, article_id=a.id) for p, a in likes]
        )

    await link()
    return people, written


async def test_article_filters_have_exact_counts(conduit: httpx.AsyncClient) -> None:
    people, _ = await _seed_articles()
    ada, bob, cy = (p.username for p in people)

    async def listed(**params: str) -> tuple[int, int]:
        body = (await conduit.get("/articles", params={**params, "limit": 100})).json()
        assert len({a["slug"] for a in body["articles"]}) == len(body["articles"])  # no repeats
        return body["articlesCount"], len(body["articles"])

    assert await listed() == (18, 18)
    assert await listed(author=ada) == (12, 12)
    assert await listed(tag=(await TagRepo().names())[0]) == (8, 8)  # two tags, one row each
    assert await listed(favorited=cy) == (6, 6)  # three fans, one row each
    assert await listed(author=bob, favorited=ada) == (0, 0)
    assert await listed(author=ada, favorited=bob) == (6, 6)
    page = (await conduit.get("/articles", params={"author": ada, "limit": 5})).json()
    assert page["articlesCount"] == 12 and len(page["articles"]) == 5
    unknown = await conduit.get("/articles", params={"author.password_hash": "x"})
    assert unknown.status_code == 422 and "password_hash" not in unknown.text
    assert "the allowed filters are: tag, author, favorited" in unknown.text
