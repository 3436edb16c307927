"""Repositories: ``DbRepo`` plus derived queries (implemented from their names) and two caches."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from examples.conduit.entities import Article, Comment, Favorite, Follow, Tag, User
from viveka_db import DbRepo, cacheable, repository


class Author(BaseModel):
    """A user's public columns: what a profile shows and what the profile cache holds."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    username: str
    bio: str
    image: str | None


@repository
class UserRepo(DbRepo[User]):
    async def find_by_email(self, email: str) -> User | None: ...
    async def find_by_username(self, username: str) -> Author | None: ...  # SELECT 4 columns

    @cacheable(key_prefix="conduit-profile", ttl=300)
    async def profile(self, username: str) -> Author | None:
        return await self.find_by_username(username)


@repository
class FollowRepo(DbRepo[Follow]):
    async def exists_by_follower_id_and_followed_id(self, me: int, them: int) -> bool: ...
    async def find_all_by_follower_id_and_followed_id_in(
        self, me: int, them: list[int]
    ) -> list[Follow]: ...
    async def delete_by_follower_id_and_followed_id(self, me: int, them: int) -> int: ...


@repository
class TagRepo(DbRepo[Tag]):
    @cacheable(key_prefix="conduit-tags", ttl=60)
    async def names(self) -> list[str]:
        return await self.all(select(Tag.name).order_by(Tag.name))


@repository
class ArticleRepo(DbRepo[Article]):
    default_load = (Article.author, Article.tags)

    async def find_by_slug(self, slug: str) -> Article | None: ...


@repository
class FavoriteRepo(DbRepo[Favorite]):
    async def find_all_by_user_id_and_article_id_in(
        self, me: int, articles: list[int]
    ) -> list[Favorite]: ...
    async def delete_by_user_id_and_article_id(self, me: int, article: int) -> int: ...


@repository
class CommentRepo(DbRepo[Comment]):
    default_load = (Comment.author,)

    async def find_all_by_article_id_order_by_id(self, article_id: int) -> list[Comment]: ...
    async def find_by_id_and_article_id(self, id: int, article_id: int) -> Comment | None: ...
