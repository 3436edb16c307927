"""The original README's usage examples (seed 002, sections 1-5), run unchanged on every backend.

Two substitutions only, both allowed by the test conventions: ``ConfigService`` is a
stand-in with the same ``get(section, key)`` shape (any config source of
``docs/configuration.md`` may be used),
and the table is named ``core_users`` instead of ``users`` (test tables carry their area's
prefix so test modules never collide).
"""

from __future__ import annotations

import configparser

import httpx

# ---- seed section 3: define an entity (verbatim) ---------------------------------------------
from sqlalchemy import Column, Integer, String

from viveka_db.base.db_base import VivekaDbBase
from viveka_db.decorator.db_decorator import entity, table


@entity
@table("core_users")
class User(VivekaDbBase):
    id = Column(Integer, primary_key=True)
    name = Column(String(100), nullable=False)
    email = Column(String(255), unique=True, nullable=False)


# ---- seed section 4: define a repository (verbatim) ------------------------------------------
from viveka_db.base.db_repo import DbRepo  # noqa: E402
from viveka_db.decorator.db_decorator import (  # noqa: E402
    cache_evict,
    cacheable,
    repository,
    transactional,
)


@repository
class UserRepo(DbRepo[User]):
    def __init__(self):  # type: ignore[no-untyped-def]
        super().__init__(User)

    @transactional
    async def save(self, user: User) -> User:
        result = await self.insert_all([user])
        return result[0]

    @transactional
    @cacheable(key_prefix="user", ttl=3600)
    async def get(self, user_id: int):  # type: ignore[no-untyped-def]
        return await self.get_by_id(user_id)

    @transactional
    @cache_evict(key_prefix="user")
    async def remove(self, user_id: int) -> bool:
        return await self.delete(user_id)

    @transactional
    async def find_by_email(self, email: str):  # type: ignore[no-untyped-def]
        return await self.find_by_field("email", email)


# ---- seed section 5: use the repository in a service (verbatim) ------------------------------
class UserService:
    def __init__(self):  # type: ignore[no-untyped-def]
        self.user_repo = UserRepo()

    async def register(self, name: str, email: str) -> User:
        user = User(name=name, email=email)
        return await self.user_repo.save(user)

    async def get_user(self, user_id: int) -> User:
        return await self.user_repo.get(user_id)  # type: ignore[no-any-return]


# ---- the ConfigService stand-in ---------------------------------------------------------------
class ConfigService:
    """Shaped like viveka-grantha's ConfigService: ``get(section, key)`` over a config.ini."""

    ini_text = ""

    def __init__(self) -> None:
        self._parser = configparser.ConfigParser()
        self._parser.read_string(self.ini_text)

    def get(self, section: str, key: str) -> str:
        return self._parser.get(section, key)


async def test_readme_examples_run_unchanged(backend_url: str) -> None:
    from viveka_db.session.db_session import DatabaseSessionFactory as Factory

    await Factory.close_all()
    ConfigService.ini_text = (
        f"[database]\nurl = {backend_url}\npool_size = 10\nmax_overflow = 20\necho = false\n"
        # the seed's [cache] section names Redis; the in-process cache stands in for it, and
        # naming it explicitly gives every run a fresh one
        "[cache]\nurl = memory://\nenabled = true\n"
    )
    try:
        await _run_the_readme(backend_url)
    finally:
        factory = Factory.get_instance() if Factory.is_initialised() else None
        if factory is not None:
            async with factory.engine.begin() as conn:
                await conn.execute(User.__table__.delete())  # type: ignore[attr-defined]
        await Factory.close_all()


async def _run_the_readme(backend_url: str) -> None:
    # ---- seed section 1: initialize the session factory at startup (verbatim) ----
    from viveka_db.session.db_session import DatabaseSessionFactory

    config = ConfigService()
    DatabaseSessionFactory(config_service=config)

    # ---- seed section 2: register the middleware (verbatim) ----
    from fastapi import FastAPI

    from viveka_db.middleware.db_middleware import DbMiddleware
    from viveka_db.session.db_session import DatabaseSessionFactory

    app = FastAPI()
    engine = DatabaseSessionFactory.get_instance().engine
    app.add_middleware(DbMiddleware, engine=engine)

    # (not in the README: the tables, and routes that use the service)
    await DatabaseSessionFactory.get_instance().create_all([User])
    assert DatabaseSessionFactory.get_instance().settings.database.pool_size == 10
    service = UserService()

    @app.post("/users")
    async def register(name: str, email: str) -> dict[str, object]:
        user = await service.register(name, email)
        return {"id": user.id, "name": user.name}

    @app.get("/users/{user_id}")
    async def get_user(user_id: int) -> dict[str, object]:
        user = await service.get_user(user_id)
        return {"email": None if user is None else user.email}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://readme") as client:
        created = await client.post("/users", params={"name": "Asha", "email": "asha@example.com"})
        assert created.status_code == 200, created.text
        user_id = created.json()["id"]
        assert isinstance(user_id, int)
        for _ in range(2):  # the second read may come from the cache: same answer
            fetched = await client.get(f"/users/{user_id}")
            assert fetched.json() == {"email": "asha@example.com"}

    # the background path: no request, no session in context
    bob = await service.register("Bob", "bob@example.com")
    assert bob.id is not None and bob.id != user_id
    assert (await service.get_user(bob.id)).email == "bob@example.com"
    found = await service.user_repo.find_by_email("bob@example.com")
    assert found is not None and found.name == "Bob"
    assert await service.user_repo.find_by_email("nobody@example.com") is None
    assert await service.user_repo.remove(bob.id) is True
    assert await service.get_user(bob.id) is None  # evicted: not served from the cache
    assert await service.user_repo.remove(bob.id) is False
    assert await service.user_repo.count() == 1
